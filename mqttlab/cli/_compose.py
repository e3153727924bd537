"""``mqttlab compose init``: the compose stack's .env and generated files (users, API keys, TLS)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.group()
def compose() -> None:
    """The compose stack (EMQX, InfluxDB, Prometheus, Grafana, services)."""


@compose.command("init")
@click.option("--dir", "compose_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The compose/ directory [default: ./compose]; a .env with random secrets is written if missing.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write [default: <compose dir>/generated]. The stack's init container uses /generated.")
@click.option("--devices", "devices_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Device seed file [default: ./config/devices.json if present].")
def init(compose_dir: Path | None, out: Path | None, devices_file: Path | None) -> None:
    """Write EMQX's bootstrap users and API keys and the TLS material (idempotent)."""
    from ..backends.compose._env import ensure_env, read_env
    from ..backends.compose._generate import generate

    if out is not None and compose_dir is None:  # inside the init container: settings come from the environment
        env = dict(os.environ)
    else:
        from ..backends.compose._backend import find_compose_dir

        directory = find_compose_dir(compose_dir)
        env = {**read_env(ensure_env(directory)), **{k: v for k, v in os.environ.items() if k.startswith("MQTTLAB_")}}
        out = out or directory / "generated"
    seed = devices_file or Path("config/devices.json")
    for path in generate(out, env, seed):
        click.echo(f"wrote {path}")
