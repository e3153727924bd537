"""History against the real lab: every message byte-exact, replay order and timing, no loss across kills."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttlab import ApiError, ConfigError, Lab
from mqttlab._wait import wait_until
from mqttlab.testing import MessageCollector
from tests.helpers import run_cli

pytestmark = pytest.mark.lab


def _ns() -> str:
    return f"h{uuid.uuid4().hex[:6]}"


def test_numbered_messages_are_recorded_byte_exact_with_properties(lab: Lab) -> None:
    ns = _ns()
    client = lab.mqtt_client()
    sent: list[tuple[str, bytes, int]] = []
    for i in range(60):
        payload = (json.dumps({"n": i, "v": i * 1.5}).encode() if i % 3 == 0 else
                   bytes([i, 0, 255, 0x80, 0xC3]) + b"\xff" * i if i % 3 == 1 else f"text \u00e9 {i}\n".encode())
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("n", str(i)), ("lab", "history")]
        props.ContentType = "application/x-test"
        topic = f"{ns}/q{i % 3}/{i}"
        client.publish(topic, payload, qos=i % 3, retain=(i == 5), properties=props).wait_for_publish(5)
        sent.append((topic, payload, i % 3))
    table = lab.history.wait_for(60, topic=f"{ns}/#")
    rows = table.to_pylist()
    assert [(r["topic"], bytes(r["payload"]), r["qos"]) for r in rows] == sent  # recorded order = publish order
    props = json.loads(rows[7]["props"])
    assert props["user_property"] == [["n", "7"], ["lab", "history"]] and props["content_type"] == "application/x-test"
    assert rows[5]["retain"] is True
    df = lab.history.messages(topic=f"{ns}/q0/+")
    assert df["text"].map(lambda t: json.loads(t)["n"]).tolist() == list(range(0, 60, 3))
    assert str(df["time"].dt.tz) == "UTC"


def test_series_topics_and_last(lab: Lab) -> None:
    ns = _ns()
    device = lab.devices.add(f"{ns}-dev")
    client = lab.mqtt_client(device=device)
    for i in range(40):
        client.publish(device.telemetry_topic, json.dumps({"temp": float(i), "gps": {"lat": 52.0 + i}}), qos=1)
    lab.history.wait_for(40, device=device.id)
    raw = lab.history.series("temp", device=device.id)
    assert raw["value"].tolist() == [float(i) for i in range(40)] and set(raw["device"]) == {device.id}
    bucketed = lab.history.series("gps.lat", device=device.id, every="1h", agg="max")
    assert bucketed["value"].max() == 91.0 and bucketed["n"].sum() == 40
    last = lab.history.messages(device=device.id, last=5)
    assert [json.loads(t)["temp"] for t in last["text"]] == [35.0, 36.0, 37.0, 38.0, 39.0]
    topics = lab.history.topics().set_index("topic")
    assert topics.loc[device.telemetry_topic, "messages"] == 40
    with pytest.raises(ApiError) as err:
        lab.history.series("temp", agg="mode")
    assert err.value.status == 400
    with pytest.raises(ConfigError, match="cannot read the time"):
        lab.history.messages(start="last tuesday")


def test_replay_keeps_order_bytes_qos_and_timing(lab: Lab) -> None:
    ns = _ns()
    client = lab.mqtt_client()
    gaps = [0.0, 0.05, 0.01, 0.1, 0.02, 0.0, 0.08]
    pause = threading.Event()
    for i, gap in enumerate(gaps):
        pause.wait(gap)  # the recorded inter-arrival times the replay must reproduce
        client.publish(f"{ns}/src/{i}", bytes([i]) * (i + 1), qos=i % 3).wait_for_publish(5)
    recorded = lab.history.wait_for(len(gaps), topic=f"{ns}/src/#")
    listener = MessageCollector(lab.mqtt_client())
    listener.subscribe(f"replay-{ns}/#", qos=2)
    arrivals: list[float] = []
    listener.client.on_message = lambda c, u, m: (arrivals.append(time.perf_counter()), listener._on_message(c, u, m))
    report = lab.history.replay(topic=f"{ns}/src/#", speed=1.0, to_prefix=f"replay-{ns}", progress=False)
    got = listener.wait_count(len(gaps))
    assert [m.topic for m in got] == [f"replay-{ns}/{ns}/src/{i}" for i in range(len(gaps))]
    assert [m.payload for m in got] == [bytes([i]) * (i + 1) for i in range(len(gaps))]
    assert [m.qos for m in got] == [i % 3 for i in range(len(gaps))]
    ts = recorded.column("ts").to_pylist()
    recorded_gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(ts)]
    replay_gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(abs(r - g) < 0.02 for r, g in zip(replay_gaps, recorded_gaps, strict=True)), (replay_gaps, recorded_gaps)
    assert report.sent == len(gaps) and report.timing_error_ms["p99"] < 20
    fast = lab.history.replay(topic=f"{ns}/src/#", speed="max", to_prefix=f"fast-{ns}", progress=False)
    assert fast.sent == len(gaps) and fast.duration_s < sum(gaps)


def test_replay_can_be_cancelled_and_replays_files(lab: Lab, tmp_path: Path) -> None:
    ns = _ns()
    client = lab.mqtt_client()
    for i in range(20):
        client.publish(f"{ns}/c/{i}", str(i).encode(), qos=1)
    lab.history.wait_for(20, topic=f"{ns}/c/#")
    run = lab.history.replay(topic=f"{ns}/c/#", speed=0.001, to_prefix=f"slow-{ns}", background=True)
    wait_until(lambda: run.progress[0] >= 1, timeout=5, what="the first replayed message")
    run.cancel()
    report = run.wait(10)
    assert report.cancelled and report.sent < 20
    path = lab.history.export(tmp_path / "c.jsonl", topic=f"{ns}/c/#")
    with pytest.raises(ConfigError, match="already exists"):
        lab.history.export(path, topic=f"{ns}/c/#")
    listener = MessageCollector(lab.mqtt_client())
    listener.subscribe(f"file-{ns}/#", qos=1)
    lab.history.replay(source=path, speed="max", to_prefix=f"file-{ns}", progress=False)
    assert [m.payload for m in listener.wait_count(20)] == [str(i).encode() for i in range(20)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_nothing_acknowledged_is_lost_when_the_services_die_mid_ingest(tmp_path: Path, sig: int) -> None:
    with Lab.local(tmp_path / "lab") as own:
        own.history.wait_for(0)  # recorder up
        wait_until(lambda: own.history.stats()["recorder_connected"], timeout=10, what="the recorder's session")
        pub = own.mqtt_client()
        total, killed = 3000, threading.Event()

        def kill_midway() -> None:
            wait_until(lambda: own.history.stats()["recorder"]["written"] > 300, timeout=20, what="ingest to start")
            os.kill(own.status()["components"]["services"]["pid"], sig)
            killed.set()

        killer = threading.Thread(target=kill_midway)
        killer.start()
        infos = [pub.publish("ingest/x", json.dumps({"seq": i}), qos=1) for i in range(total)]
        for info in infos:
            info.wait_for_publish(30)  # every one acknowledged by the broker
        killer.join(30)
        assert killed.is_set()
        wait_until(lambda: not own.status()["components"]["services"]["running"], timeout=10, what="services down")
        own.restart("services")
        table = own.history.wait_for(total, timeout=60, topic="ingest/x")
        seqs = [json.loads(p)["seq"] for p in table.column("payload").to_pylist()]
        assert set(seqs) == set(range(total))  # nothing acknowledged was lost
        if sig == signal.SIGTERM:
            assert len(seqs) == total  # a clean stop writes and acknowledges before it exits: no duplicates


def test_cli_history_and_replay(lab: Lab, tmp_path: Path) -> None:
    ns = _ns()
    client = lab.mqtt_client()
    for i in range(5):
        client.publish(f"{ns}/cli/{i}", f"m{i}".encode(), qos=1).wait_for_publish(5)
    lab.history.wait_for(5, topic=f"{ns}/cli/#")
    sd = str(lab.state_dir)
    stats = json.loads(run_cli("history", "stats", "--state-dir", sd).stdout)
    assert stats["store"] == "duckdb" and stats["messages"] >= 5
    out = tmp_path / "cli.parquet"
    assert run_cli("history", "export", str(out), "--state-dir", sd, "--topic", f"{ns}/cli/#").returncode == 0
    again = run_cli("history", "export", str(out), "--state-dir", sd, "--topic", f"{ns}/cli/#")
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    imported = run_cli("history", "import", str(out), "--state-dir", sd)
    assert imported.returncode == 0 and "imported 5" in imported.stdout
    rep = run_cli("replay", "--state-dir", sd, "--topic", f"{ns}/cli/#", "--speed", "max", "--to-prefix", "r", "--json")
    assert rep.returncode == 0 and json.loads(rep.stdout)["sent"] == 10  # the originals and the imported copies


def test_pausing_the_recorder(lab: Lab) -> None:
    ns = _ns()
    client = lab.mqtt_client()
    with lab.history.paused():
        assert lab.history.stats()["recording"] is False
        client.publish(f"{ns}/paused", b"not kept", qos=1).wait_for_publish(5)
    client.publish(f"{ns}/resumed", b"kept", qos=1).wait_for_publish(5)
    table = lab.history.wait_for(1, topic=f"{ns}/#")
    assert table.column("topic").to_pylist() == [f"{ns}/resumed"]
    bad = lab.history._http.put("/api/history/recording", json={"recording": "yes"})
    assert bad.status_code == 400


def test_replay_controls_widget(lab: Lab) -> None:
    ns = _ns()
    client = lab.mqtt_client()
    for i in range(5):
        client.publish(f"{ns}/w/{i}", f"{i}".encode(), qos=1).wait_for_publish(5)
    lab.history.wait_for(5, topic=f"{ns}/w/#")
    listener = MessageCollector(lab.mqtt_client())
    listener.subscribe(f"ui-{ns}/#", qos=1)
    panel = lab.history.replay_controls(topic=f"{ns}/w/#", start="-10m", to_prefix=f"ui-{ns}")
    panel.children[1].children[1].value = True  # "as fast as possible"
    panel.go_button.click()
    wait_until(lambda: "replayed 5 of 5" in panel.status.value, timeout=10, what="the panel to report the replay",
               seen=lambda: panel.status.value)
    assert sorted(m.payload for m in listener.wait_count(5)) == [f"{i}".encode() for i in range(5)]
    assert panel.go_button.disabled is False
    # bad input shows the error and its hint in the panel instead of raising into the notebook
    panel.children[0].children[1].value = "not a time"
    panel.go_button.click()
    assert "color:#b00" in panel.status.value and panel.go_button.disabled is False
