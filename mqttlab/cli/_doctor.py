"""``mqttlab doctor``: what this machine has for each backend, and what to fix."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import click
import psutil

from ..backends.local import _mosquitto
from ..backends.local._backend import LocalBackend
from ..config import LabConfig, resolve_state_dir
from ..errors import MqttlabError

_CORE = ["paho-mqtt", "fastapi", "uvicorn", "prometheus-client", "cryptography", "psutil", "click"]
_OPTIONAL = {"pandas": "notebooks", "plotly": "notebooks", "ipywidgets": "notebooks", "papermill": "notebooks",
             "jupyterlab": "notebooks", "docker": "compose", "influxdb-client": "compose"}


def _check(results: list[dict[str, Any]], name: str, level: str, detail: str, hint: str = "") -> None:
    results.append({"check": name, "level": level, "detail": detail, "hint": hint})


def _listen_addresses(pid: int) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for conn in psutil.Process(pid).net_connections("inet"):
            if conn.status == psutil.CONN_LISTEN:
                out[conn.laddr.port] = conn.laddr.ip
    except psutil.Error:
        pass
    return out


def run_checks(state_dir: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    _check(results, "python", "ok", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    try:
        binary = _mosquitto.find_mosquitto()
        version = _mosquitto.mosquitto_version(binary)
        major = int(version.split(".")[0])
        _check(results, "mosquitto", "ok" if major >= 2 else "fail", f"{binary} version {version}",
               "" if major >= 2 else "mosquitto 2.x is required")
        plugin = _mosquitto.find_dynsec_plugin(binary)
        _check(results, "dynamic-security plugin", "ok", str(plugin))
    except MqttlabError as exc:
        _check(results, "mosquitto", "fail", exc.message, exc.hint or "")
    for dist in _CORE:
        try:
            _check(results, f"python: {dist}", "ok", importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            _check(results, f"python: {dist}", "fail", "not installed", "pip install -e .")
    for dist, extra in _OPTIONAL.items():
        try:
            _check(results, f"python: {dist}", "ok", importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            _check(results, f"python: {dist}", "warn", f"not installed (needed for {extra})",
                   f"pip install -e '.[{extra}]'")
    writable = os.access(state_dir if state_dir.exists() else state_dir.parent, os.W_OK)
    _check(results, "state dir", "ok" if writable else "fail", str(state_dir),
           "" if writable else "choose a writable --state-dir or set MQTTLAB_HOME")
    doc = LocalBackend(LabConfig(state_dir=state_dir)).status()
    if "mqtt" in doc:
        _check(results, "lab", "ok" if doc["running"] else "fail",
               "running" if doc["running"] else "degraded: " + ", ".join(
                   n for n, c in doc["components"].items() if not c["running"]) + " down",
               "" if doc["running"] else "`mqttlab up` restarts the missing component")
        pid = doc["components"]["mosquitto"]["pid"]
        if doc["components"]["mosquitto"]["running"]:
            addrs = _listen_addresses(pid)
            for port, ip in sorted(addrs.items()):
                if ip in ("0.0.0.0", "::") and doc["mqtt"]["host"] not in ("0.0.0.0", "::"):
                    _check(results, f"listener :{port}", "warn",
                           f"bound to {ip} (all interfaces) although the lab asked for {doc['mqtt']['host']}: "
                           "mosquitto 2.0.11's WebSocket listener ignores its bind address; it requires "
                           "the same authentication as every listener",
                           "firewall the port if this host is on a shared network, or use a newer mosquitto")
        _check(results, "websocket", "ok",
               f"MQTT over WebSocket is served by the services process at ws://{doc['mqtt']['host']}:"
               f"{doc['mqtt']['ws_port']}/mqtt, bound like the other listeners: mosquitto 2.0.11 would bind its own "
               "WebSocket listeners to every interface whatever address it is given")
    else:
        _check(results, "lab", "ok", f"not running from {state_dir}")
    docker_cli = shutil.which("docker")
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        _check(results, "docker engine", "ok", "reachable: the compose backend can run")
    except Exception as exc:  # any failure means: no engine for the compose backend
        _check(results, "docker engine", "warn", f"not reachable ({type(exc).__name__}); CLI: {docker_cli or 'absent'}",
               "the compose backend needs Docker; the local backend works without it")
    return results


@click.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True)
def doctor(state_dir: Path | None, as_json: bool) -> None:
    """Check mosquitto, Python dependencies, ports, the running lab and Docker (exit 1 on a failure)."""
    results = run_checks(resolve_state_dir(state_dir))
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for r in results:
            click.echo(f"[{marks[r['level']]}] {r['check']}: {r['detail']}")
            if r["hint"] and r["level"] != "ok":
                click.echo(f"         hint: {r['hint']}")
    if any(r["level"] == "fail" for r in results):
        raise click.exceptions.Exit(1)
