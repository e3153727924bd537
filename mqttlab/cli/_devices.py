"""``mqttlab devices add | list | remove``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..lab import Lab


@click.group()
def devices() -> None:
    """Manage the device registry of the running lab."""


@devices.command("add")
@click.argument("device_ids", nargs=-1, required=True)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--cert", is_flag=True, help="Issue a client certificate (for the client-certificate listener).")
def add(device_ids: tuple[str, ...], state_dir: Path | None, cert: bool) -> None:
    """Register devices; prints their credentials as JSON."""
    with Lab.connect(state_dir) as lab:
        added = lab.devices.add_many([{"id": d, "auth": "cert" if cert else "password"} for d in device_ids])
    click.echo(json.dumps([d.as_dict() for d in added], indent=2))


@devices.command("list")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def list_(state_dir: Path | None) -> None:
    """List registered devices."""
    with Lab.connect(state_dir) as lab:
        for dev in lab.devices.list():
            click.echo(f"{dev.id}\t{dev.auth}")


@devices.command("remove")
@click.argument("device_id")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def remove(device_id: str, state_dir: Path | None) -> None:
    """Unregister a device; its credentials stop working at once."""
    with Lab.connect(state_dir) as lab:
        lab.devices.remove(device_id)
    click.echo(f"removed {device_id}")
