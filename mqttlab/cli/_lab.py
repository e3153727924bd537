"""``mqttlab up | down | status | logs``."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import click
import psutil

from .._state import RUN_FILE
from ..backends import backend_for
from ..config import Ports, resolve_state_dir
from ..errors import LabNotRunningError, StateDirError
from ..lab import Lab

state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Lab state directory [default: $MQTTLAB_HOME or ./.mqttlab]",
)


def _print_status(doc: dict[str, Any]) -> None:
    if not doc.get("running") and "mqtt" not in doc:
        click.echo(f"no lab running from {doc['state_dir']}")
        return
    state = "running" if doc["running"] else "DEGRADED"
    click.echo(f"lab {doc.get('lab_id')} ({doc['backend']}) {state}  state: {doc['state_dir']}")
    m = doc["mqtt"]
    click.echo(f"  mqtt       mqtt://{m['host']}:{m['tcp_port']}   user {m['username']}")
    click.echo(f"  mqtts      mqtts://{m['host']}:{m['tls_port']}   (CA {m['ca_file']})")
    click.echo(f"  mqtts+cert mqtts://{m['host']}:{m['tls_client_cert_port']}")
    click.echo(f"  websocket  ws://{m['host']}:{m['ws_port']}{m['ws_path']}")
    click.echo(f"  api        {doc['api']['url']}   docs {doc['api']['docs_url']}")
    click.echo(f"  metrics    {doc['metrics_url']}")
    for name, comp in doc.get("components", {}).items():
        mark = "up" if comp["running"] else "DOWN"
        extra = f" rss {comp['rss_bytes'] / 2**20:.1f} MiB" if comp["running"] else ""
        health = "" if "healthy" not in comp else (" healthy" if comp["healthy"] else " UNHEALTHY")
        click.echo(f"  {name:<10} {mark} pid {comp['pid']}{extra}{health}")
    click.echo("  credentials: `mqttlab status --json`")


@click.command()
@state_dir_option
@click.option("--backend", type=click.Choice(["local", "compose"]), default="local", show_default=True,
              help="compose: EMQX, InfluxDB, Prometheus, Grafana under Docker Compose (needs Docker).")
@click.option("--compose-dir", type=click.Path(file_okay=False, path_type=Path), help="The compose/ directory.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--mqtt-port", type=int, help="MQTT/TCP port [default: a free one]")
@click.option("--mqtts-port", type=int, help="MQTT/TLS port")
@click.option("--mqtts-client-cert-port", type=int, help="MQTT/TLS port that requires client certificates")
@click.option("--api-port", type=int, help="services HTTP API port (also MQTT over WebSocket at /mqtt)")
@click.option("--devices", "devices_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Device seed file (JSON) [default: ./config/devices.json if present]")
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON.")
def up(state_dir: Path | None, backend: str, compose_dir: Path | None, host: str, mqtt_port: int | None, mqtts_port: int | None,
       mqtts_client_cert_port: int | None, api_port: int | None, devices_file: Path | None,
       as_json: bool) -> None:
    """Start the lab in the background; returns once it is ready."""
    t0 = time.perf_counter()
    if backend == "compose":
        lab = Lab.compose(state_dir, compose_dir=compose_dir)
    else:
        ports = Ports(mqtt=mqtt_port, mqtts=mqtts_port, mqtts_client_cert=mqtts_client_cert_port, api=api_port)
        lab = Lab.local(state_dir, host=host, ports=ports, devices=devices_file)
    doc = lab.status()
    lab.close()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    verb = "started" if lab.started_here else "already running"
    click.echo(f"mqttlab {verb} in {time.perf_counter() - t0:.2f}s")
    _print_status(doc)


def _leftovers(state_dir: Path) -> list[psutil.Process]:
    """Processes whose command line points into ``state_dir`` (for ``down --force``)."""
    marker = str(state_dir)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if marker + "/mosquitto/mosquitto.conf" in cmd or marker + "/services/services.json" in cmd:
            found.append(proc)
    return found


@click.command()
@state_dir_option
@click.option("--force", is_flag=True, help="Also clean up after a corrupt or lost state file.")
def down(state_dir: Path | None, force: bool) -> None:
    """Stop the lab (SIGTERM; waits until every process exited and every port closed)."""
    sd = resolve_state_dir(state_dir)
    try:
        outcome = backend_for(sd).stop()
    except StateDirError:
        if not force:
            raise
        outcome = {}
        (sd / RUN_FILE).unlink(missing_ok=True)
    if force:
        procs = _leftovers(sd)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        _gone, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            proc.kill()
        outcome.update({f"pid {p.pid}": "terminated" for p in procs})
    if not outcome:
        click.echo(f"no lab running from {sd}")
        return
    click.echo("stopped: " + ", ".join(f"{k} {v}" for k, v in outcome.items()))


@click.command()
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable status with credentials.")
def status(state_dir: Path | None, as_json: bool) -> None:
    """Show the lab's endpoints and the state of each component (exit 1 if not fully running)."""
    doc = backend_for(resolve_state_dir(state_dir)).status()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        _print_status(doc)
    if not doc["running"]:
        raise click.exceptions.Exit(1)


@click.command()
@state_dir_option
@click.argument("service", default="services")
@click.option("-n", "--lines", type=int, default=100, show_default=True)
def logs(state_dir: Path | None, service: str, lines: int) -> None:
    """Print the tail of a component's log (local: mosquitto, services; compose: any service)."""
    backend = backend_for(resolve_state_dir(state_dir))
    text = backend.logs(service, lines)
    if not text:
        raise LabNotRunningError(f"no {service} log in {backend.state_dir}", hint="has the lab been started here?")
    click.echo(text)
