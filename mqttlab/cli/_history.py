"""``mqttlab history stats|export|import`` and ``mqttlab replay``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..lab import Lab

state_dir_option = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
filters = [
    click.option("--topic", help="Topic or MQTT filter (devices/+/telemetry)."),
    click.option("--device", help="Device id."),
    click.option("--start", help='Start time: ISO, "now" or relative ("-15m").'),
    click.option("--stop", help="End time (exclusive), same forms."),
]


F = TypeVar("F", bound=Callable[..., Any])


def with_filters(fn: F) -> F:
    for option in reversed(filters):
        fn = option(fn)
    return fn


@click.group()
def history() -> None:
    """Recorded messages of the running lab."""


@history.command("stats")
@state_dir_option
def stats(state_dir: Path | None) -> None:
    """Store size and recorder counters (JSON)."""
    with Lab.connect(state_dir) as lab:
        click.echo(json.dumps(lab.history.stats(), indent=2))


@history.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@state_dir_option
@with_filters
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), help="[default: from the suffix]")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def export(path: Path, state_dir: Path | None, topic: str | None, device: str | None, start: str | None,
           stop: str | None, fmt: str | None, force: bool) -> None:
    """Write recorded messages to PATH (.jsonl, .csv or .parquet); payloads stay byte-exact."""
    with Lab.connect(state_dir) as lab:
        target = lab.history.export(path, fmt, overwrite=force, topic=topic, device=device, start=start, stop=stop)
    click.echo(f"exported to {target}")


@history.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@state_dir_option
def import_(path: Path, state_dir: Path | None) -> None:
    """Append an export's messages to the running lab's history."""
    with Lab.connect(state_dir) as lab:
        click.echo(f"imported {lab.history.import_file(path)} messages")


@click.command()
@state_dir_option
@with_filters
@click.option("--speed", default="1", show_default=True, help='Time scale: 1, 20, 0.5, or "max".')
@click.option("--to-prefix", help="Republish under this prefix (e.g. replay/).")
@click.option("--qos", type=click.IntRange(0, 2), help="Override the recorded QoS.")
@click.option("--file", "source", type=click.Path(dir_okay=False, path_type=Path), help="Replay an export file instead.")
@click.option("--json", "as_json", is_flag=True)
def replay(state_dir: Path | None, topic: str | None, device: str | None, start: str | None, stop: str | None,
           speed: str, to_prefix: str | None, qos: int | None, source: Path | None, as_json: bool) -> None:
    """Republish recorded messages onto the lab's broker, in order, with their timing scaled."""
    scale: float | str = "max" if speed == "max" else float(speed)
    from ..history import ReplayReport

    with Lab.connect(state_dir) as lab:
        report = lab.history.replay(topic, start, stop, device=device, speed=scale, to_prefix=to_prefix, qos=qos,
                                    source=source, progress=not as_json)
    assert isinstance(report, ReplayReport)
    doc = {"sent": report.sent, "total": report.total, "duration_s": round(report.duration_s, 3),
           "speed": report.speed, "timing_error_ms": report.timing_error_ms, "cancelled": report.cancelled}
    click.echo(json.dumps(doc, indent=2) if as_json else
               f"replayed {doc['sent']}/{doc['total']} in {doc['duration_s']}s; timing error ms {doc['timing_error_ms']}")
