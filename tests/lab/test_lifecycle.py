"""Start, attach, stop, crash, restart and bad configuration of the local stack."""

from __future__ import annotations

import json
import os
import signal
import socket
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from mqttlab import Lab, LabNotRunningError, MosquittoNotFoundError, PortInUseError, StateDirError
from mqttlab._wait import port_open, wait_until
from mqttlab.testing import MessageCollector
from tests.helpers import processes_of, run_cli

pytestmark = pytest.mark.lab


def _listening_ports(status: dict) -> list[int]:
    m = status["mqtt"]
    return [m["tcp_port"], m["tls_port"], m["tls_client_cert_port"], m["ws_port"]]


def test_down_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    lab = Lab.local(tmp_path / "lab")
    status = lab.status()
    assert status["running"] and len(processes_of(tmp_path / "lab")) == 2
    outcome = lab.stop()
    assert outcome == {"services": "terminated", "mosquitto": "terminated"}  # SIGTERM sufficed
    assert processes_of(tmp_path / "lab") == []
    assert not any(port_open("127.0.0.1", p) for p in _listening_ports(status))
    assert not (tmp_path / "lab" / "run.json").exists()


def test_second_start_attaches_instead_of_starting_twice(tmp_path: Path) -> None:
    with Lab.local(tmp_path / "lab") as first:
        pids = {n: c["pid"] for n, c in first.status()["components"].items()}
        second = Lab.local(tmp_path / "lab")
        assert {n: c["pid"] for n, c in second.status()["components"].items()} == pids
        second.__exit__(None, None, None)  # attached, not owned: leaves the lab running
        assert first.status()["running"]
        attached = Lab.connect(tmp_path / "lab")
        assert attached.endpoints == first.endpoints
    assert processes_of(tmp_path / "lab") == []


def test_killed_services_show_in_status_and_up_restarts_them(tmp_path: Path) -> None:
    sd = tmp_path / "lab"
    with Lab.local(sd) as lab:
        pid = lab.status()["components"]["services"]["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not lab.status()["running"], timeout=5, what="status to report the kill")
        doc = lab.status()
        assert doc["components"]["services"]["running"] is False
        assert doc["components"]["mosquitto"]["running"] is True
        cli = run_cli("status", "--state-dir", str(sd))
        assert cli.returncode == 1 and "DOWN" in cli.stdout
        again = Lab.local(sd)  # `up` on a degraded lab restarts only what is down
        doc = again.status()
        assert doc["running"] and doc["components"]["services"]["pid"] != pid
        assert doc["components"]["services"]["healthy"]


def test_persistent_session_survives_clean_restart(tmp_path: Path) -> None:
    sd = tmp_path / "lab"
    cid = f"persist-{uuid.uuid4().hex[:6]}"
    lab = Lab.local(sd)
    try:
        sub = lab.mqtt_client(client_id=cid, clean_start=False, session_expiry=3600)
        MessageCollector(sub).subscribe("queue/#", qos=1)
        sub.disconnect()
        sub.loop_stop()
        pub = lab.mqtt_client()
        for i in range(20):
            pub.publish(f"queue/{i}", str(i).encode(), qos=1).wait_for_publish(5)
        lab.stop()
        lab = Lab.local(sd)
        from mqttlab.mqtt import connect_and_wait, make_client

        endpoint = lab.broker_endpoint("tcp")
        client = make_client(endpoint, username=lab.admin[0], password=lab.admin[1], client_id=cid)
        coll = MessageCollector(client)
        session_present, _ = connect_and_wait(client, endpoint, clean_start=False, session_expiry=3600)
        assert session_present
        msgs = coll.wait_count(20)
        assert [m.payload for m in msgs] == [str(i).encode() for i in range(20)]
        client.disconnect()
        client.loop_stop()
    finally:
        lab.stop()


def test_metrics_bridge_broker_figures(lab: Lab) -> None:
    def sample() -> str | None:
        text = httpx.get(lab.endpoints.metrics).text
        return text if "mqttlab_broker_clients_connected" in text else None

    text = wait_until(sample, timeout=10, what="$SYS figures in /metrics")
    for name in ("mqttlab_broker_bytes_received_total", "mqttlab_broker_publish_dropped_total",
                 "mqttlab_services_broker_connected 1.0"):
        assert name in text


def test_api_requires_key_with_emqx_error_body(lab: Lab) -> None:
    url = lab.endpoints.api + "/api/status"
    denied = httpx.get(url)
    assert denied.status_code == 401
    assert denied.json() == {"code": "BAD_API_KEY_OR_SECRET", "message": "Check api_key/api_secret"}
    assert httpx.get(url, auth=(lab.api_auth[0], "wrong")).status_code == 401
    ok = httpx.get(url, auth=lab.api_auth)
    assert ok.status_code == 200 and ok.json()["broker"] == "connected"
    assert httpx.get(lab.endpoints.api + "/openapi.json").json()["info"]["title"] == "mqttlab services"
    assert httpx.get(lab.endpoints.api + "/nope").json()["code"] == "NOT_FOUND"


def test_idle_stack_memory_under_150_mib(fresh_lab: Lab) -> None:
    comps = fresh_lab.status()["components"]
    total = sum(c["rss_bytes"] for c in comps.values())
    assert 0 < total < 150 * 2**20, comps


# ------------------------------------------------------------------ bad configuration

def test_explicit_port_in_use_is_named_and_nothing_is_left(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError) as err:
            Lab.local(tmp_path / "lab", ports={"api": port})
        assert str(port) in err.value.message and "port" in (err.value.hint or "")
    assert processes_of(tmp_path / "lab") == []


def test_port_taken_after_check_tears_down_halfway_start(tmp_path: Path) -> None:
    """The broker starts, then the services cannot bind: everything started is stopped."""
    from mqttlab import Ports
    from mqttlab.backends.local import LocalBackend
    from mqttlab.config import LabConfig

    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        port = holder.getsockname()[1]
        holder.listen()
        backend = LocalBackend(LabConfig(state_dir=tmp_path / "lab", ports=Ports(api=port)))
        backend._choose_ports = lambda: {"mqtt": _free(), "mqtts": _free(), "mqtts_client_cert": _free(),
                                          "api": port}  # type: ignore[method-assign]
        with pytest.raises(PortInUseError, match=str(port)):
            backend.start()
    assert processes_of(tmp_path / "lab") == []
    assert not (tmp_path / "lab" / "run.json").exists()


def _free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unwritable_state_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StateDirError) as err:
        Lab.local(blocker / "lab")
    assert "MQTTLAB_HOME" in (err.value.hint or "")


def test_missing_mosquitto_names_install_commands(tmp_path: Path) -> None:
    with pytest.raises(MosquittoNotFoundError) as err:
        Lab.local(tmp_path / "lab", mosquitto=str(tmp_path / "no-such-mosquitto"))
    hint = err.value.hint or ""
    assert "apt-get install -y mosquitto" in hint and "brew install mosquitto" in hint and "conda-forge" in hint


def test_corrupt_state_file(tmp_path: Path) -> None:
    sd = tmp_path / "lab"
    sd.mkdir()
    (sd / "run.json").write_text('{"backend": "local", ')
    with pytest.raises(StateDirError, match="corrupt"):
        Lab.local(sd)
    with pytest.raises(StateDirError):
        Lab.connect(sd)


def test_connect_without_lab(tmp_path: Path) -> None:
    with pytest.raises(LabNotRunningError) as err:
        Lab.connect(tmp_path)
    assert "mqttlab up" in (err.value.hint or "")


# ------------------------------------------------------------------ the CLI, as a user runs it

def test_cli_up_status_down(tmp_path: Path) -> None:
    sd = str(tmp_path / "lab")
    up = run_cli("up", "--state-dir", sd)
    assert up.returncode == 0, up.stderr
    assert "mqttlab started" in up.stdout
    again = run_cli("up", "--state-dir", sd)
    assert "already running" in again.stdout
    doc = json.loads(run_cli("status", "--json", "--state-dir", sd).stdout)
    for key in ("host", "tcp_port", "tls_port", "ws_port", "username", "password", "ca_file"):
        assert key in doc["mqtt"]
    assert doc["backend"] == "local" and doc["running"] is True
    assert set(doc["api"]) >= {"url", "key", "secret"} and doc["metrics_url"].endswith("/metrics")
    assert doc["state_dir"] == sd
    logs = run_cli("logs", "mosquitto", "--state-dir", sd)
    assert "mosquitto version 2" in logs.stdout
    assert run_cli("doctor", "--state-dir", sd).returncode == 0
    down = run_cli("down", "--state-dir", sd)
    assert "mosquitto terminated" in down.stdout
    assert processes_of(tmp_path / "lab") == []
    assert not any(psutil.pid_exists(doc["components"][n]["pid"]) and
                   psutil.Process(doc["components"][n]["pid"]).status() != psutil.STATUS_ZOMBIE
                   for n in ("mosquitto", "services"))


@pytest.mark.parametrize("case", ["port", "state", "mosquitto", "corrupt"])
def test_cli_bad_config_is_a_clear_error_not_a_traceback(tmp_path: Path, case: str) -> None:
    sd = tmp_path / "lab"
    env: dict[str, str] = {}
    args = ["up", "--state-dir", str(sd)]
    holder = socket.socket()
    try:
        if case == "port":
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            args += ["--mqtt-port", str(holder.getsockname()[1])]
        elif case == "state":
            (tmp_path / "f").write_text("")
            args = ["up", "--state-dir", str(tmp_path / "f" / "lab")]
        elif case == "mosquitto":
            env = {"MQTTLAB_MOSQUITTO": str(tmp_path / "not-installed" / "mosquitto")}
            args = ["up", "--state-dir", str(sd)]
        else:
            sd.mkdir()
            (sd / "lab.json").write_text("garbage")
        result = run_cli(*args, env=env)
    finally:
        holder.close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "hint: " in result.stderr
    assert processes_of(sd) == []
