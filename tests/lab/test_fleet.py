"""Fleets against the real broker: identities, checks, reactions, transports, reconnects, benchmarks."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mqttlab import ConfigError, Lab
from mqttlab._wait import wait_until
from mqttlab.testing import MessageCollector
from tests.helpers import run_cli

pytestmark = pytest.mark.lab


def _prefix() -> str:
    return f"f{uuid.uuid4().hex[:5]}"


def test_fleet_devices_have_own_identities_and_nothing_is_lost(lab: Lab) -> None:
    prefix = _prefix()
    monitor = lab.fleet.monitor("devices/+/telemetry")
    fleet = lab.fleet.start(20, "smart_meter", rate=50, qos=1, messages=25, prefix=prefix)
    status = fleet.wait(30)
    assert status["sent"] == status["acked"] == 500 and status["ack_errors"] == 0
    ids = fleet.device_ids
    assert all(i in lab.devices for i in ids) and len(set(ids)) == 20
    report = monitor.wait_for(500)
    ours = {k: v for k, v in monitor.core.tracker.publishers.items() if k.startswith(prefix)}
    assert len(ours) == 20 and all(st.next == 25 and not st.missing for st in ours.values())
    assert report["latency"]["count"] >= 500
    monitor.stop()


def test_monitor_reports_injected_gap_duplicate_and_reordering(lab: Lab) -> None:
    device = f"inj-{uuid.uuid4().hex[:6]}"
    monitor = lab.fleet.monitor(f"devices/{device}/telemetry")
    client = lab.mqtt_client()
    for seq in [0, 1, 3, 3, 2, 5]:
        client.publish(f"devices/{device}/telemetry", json.dumps({"seq": seq, "ts": 0}), qos=1).wait_for_publish(5)
    monitor.wait_for(6)
    report = monitor.report({device: 6})
    assert (report["lost"], report["duplicates"], report["reordered"]) == (1, 1, 1)
    monitor.stop()


def test_reactive_devices_apply_commands_and_shadow_deltas(lab: Lab) -> None:
    fleet = lab.fleet.start(3, "thermostat", rate=5, qos=1, prefix=_prefix())
    try:
        wait_until(lambda: fleet.status()["connected"] == 3, timeout=10, what="3 devices online")
        target = fleet.device_ids[1]
        states = MessageCollector(lab.mqtt_client())
        states.subscribe(f"devices/{target}/state", qos=1)
        lab.mqtt_client().publish(f"devices/{target}/cmd", json.dumps({"setpoint": 40}), qos=1)
        applied = json.loads(states.wait_count(1)[0].payload)["applied"]
        assert applied == {"setpoint": 30.0}  # the thermostat clamps
        lab.twins.update(target, desired={"setpoint": 23.5, "mode": "eco"})
        doc = lab.twins.wait_in_sync(target, timeout=10)
        assert doc["state"]["reported"] == {"setpoint": 23.5, "mode": "eco"}
        assert fleet.status()["deltas"] >= 1 and fleet.status()["commands"] == 1
    finally:
        fleet.stop()
    assert fleet.status()["connected"] == 0


@pytest.mark.parametrize(("transport", "protocol", "stamp"), [("ws", "3.1.1", "payload"), ("tls", "5", "user_property"),
                                                              ("tcp", "5", "payload")])
def test_transports_protocols_and_stamps(lab: Lab, transport: str, protocol: str, stamp: str) -> None:
    prefix = _prefix()
    monitor = lab.fleet.monitor("devices/+/telemetry", qos=2)
    status = lab.fleet.run(4, "gps_tracker", rate=40, qos=2, messages=10, prefix=prefix, transport=transport,
                           protocol=protocol, stamp=stamp)
    assert status["sent"] == status["acked"] == 40
    monitor.wait_for(40)
    ours = {k: v for k, v in monitor.core.tracker.publishers.items() if k.startswith(prefix)}
    assert sum(st.received for st in ours.values()) == 40 and monitor.core.unstamped == 0
    monitor.stop()


def test_devices_reconnect_after_broker_restart(tmp_path: Path) -> None:
    with Lab.local(tmp_path / "lab") as own:
        fleet = own.fleet.start(5, "thermostat", rate=20, qos=1)
        wait_until(lambda: fleet.status()["sent"] >= 20, timeout=10, what="traffic")
        own.restart("mosquitto")
        before = fleet.status()["sent"]
        wait_until(lambda: fleet.status()["reconnects"] >= 5 and fleet.status()["sent"] > before + 20, timeout=20,
                   what="devices back online and sending", seen=lambda: str(fleet.status()))
        final = fleet.stop()
        assert final["connected"] == 0 and final["sent"] > before + 20


def test_benchmarks_return_consistent_figures(lab: Lab) -> None:
    pub = lab.fleet.bench("pub", qos=1, messages=20_000, clients=2)
    assert pub.metrics["sent"] == pub.metrics["acked"] == 20_000 and pub.metrics["ack_errors"] == 0
    assert pub.metrics["rate_msg_s"] > 0 and "broker_cpu_pct" in pub.metrics
    lat = lab.fleet.bench("latency", rate=500, duration=1.0, warmup=0.2)
    assert lat.metrics["received"] == lat.metrics["sent"] and lat.metrics["lost"] == 0
    assert 0 < lat.latency["p50_ms"] <= lat.latency["p99_ms"] <= lat.latency["max_ms"]
    conn = lab.fleet.bench("conn", count=200, rate=1000)
    assert conn.metrics["connections"] == 200 and conn.metrics["failures"] == 0
    sub = lab.fleet.bench("sub", messages=10_000, qos=1)
    assert sub.metrics["received"] == 10_000 and sub.metrics["lost"] == 0
    fig = lat.figure({"target p99": 1.0})
    assert list(fig.data[0].y) == [lat.latency[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms")]
    assert json.loads(json.dumps(lat.to_json()))["benchmark"] == "latency"


def test_bad_fleet_input(lab: Lab) -> None:
    with pytest.raises(ConfigError):
        lab.fleet.start(0)
    with pytest.raises(ConfigError):
        lab.fleet.start(1, qos=3)
    with pytest.raises(ConfigError, match="built-in profiles"):
        lab.fleet.start(1, "toaster", prefix=_prefix())
    with pytest.raises(ConfigError, match="duration= or messages="):
        lab.fleet.run(1)
    with pytest.raises(ConfigError, match="unknown benchmark"):
        lab.fleet.bench("warp")


def test_cli_fleet_run_and_bench(lab: Lab) -> None:
    sd = str(lab.state_dir)
    out = run_cli("fleet", "run", "--state-dir", sd, "-n", "5", "--rate", "20", "--messages", "5", "--json",
                  "--prefix", _prefix())
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["fleet"]["sent"] == 25 and doc["check"]["lost"] == 0
    bench = run_cli("bench", "latency", "--state-dir", sd, "--rate", "200", "--duration", "1", "--json")
    assert bench.returncode == 0 and json.loads(bench.stdout)["metrics"]["lost"] == 0
    bad = run_cli("bench", "pub", "--url", "http://nope")
    assert bad.returncode == 2 and "not a broker URL" in bad.stderr and "Traceback" not in bad.stderr


def test_workers_split_a_fleet_and_monitor_survives_bulk_registration(tmp_path: Path) -> None:
    with Lab.local(tmp_path / "lab") as own:
        monitor = own.fleet.monitor(client_id="mon-persistent", clean=False, session_expiry=600)
        fleet = own.fleet.start(300, "thermostat", rate=5, qos=1, duration=2, workers=2)  # > bulk threshold
        status = fleet.wait(60)
        assert status["workers"] == 2 and status["devices"] == 300 and status["last_error"] is None
        assert status["sent"] == status["acked"] > 0
        report = monitor.wait_for(status["acked"], timeout=20)
        report = monitor.report(fleet.sent_per_device())
        assert report["lost"] == 0 and report["duplicates"] == 0 and report["publishers"] == 300
        assert report["reconnects"] >= 1 and report["session_present"][-1] is True  # the bulk restart, survived
        monitor.stop()


def test_panel_shows_counters_and_stops_the_fleet(lab: Lab) -> None:
    pytest.importorskip("ipywidgets")
    fleet = lab.fleet.start(2, "thermostat", rate=10, qos=0, prefix=_prefix())
    panel = fleet.panel()
    counters, controls = panel.children
    slider, stop_button = controls.children
    assert "<b>devices</b><br>2" in counters.value
    slider.value = 20.0
    wait_until(lambda: fleet.engine.rate.per_second == 20.0, timeout=5, what="the new rate")
    stop_button.click()
    assert not fleet.running and stop_button.disabled and "<b>running</b><br>False" in counters.value
def test_launcher_starts_a_fleet_with_the_chosen_settings(lab: Lab) -> None:
    pytest.importorskip("ipywidgets")
    launcher = lab.fleet.launcher(count=3, profile="smart_meter", rate=5.0, qos=1, prefix=_prefix())
    launcher.start_button.click()
    fleet = launcher.fleet
    assert fleet is not None and fleet.running
    assert fleet.status()["devices"] == 3 and fleet.engine.rate.per_second == 5.0
    launcher.start_button.click()  # a second start while running is refused in the panel, not raised
    assert "still running" in launcher.message.value and launcher.fleet is fleet
    panel = launcher.children[-1].children[0]
    panel.children[1].children[1].click()  # the running fleet's Stop button
    assert not fleet.running


