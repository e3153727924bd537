"""``mqttlab check conformance|security|nothing-lost``: exit code 1 when a check fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from ..lab import Lab

state_dir_option = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                                help="The running lab to check (when no --url is given).")
url_option = click.option("--url", help="Broker URL (mqtt://user:pass@host:1883); default: the running lab.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of a table.")
ca_option = click.option("--ca-file", type=click.Path(dir_okay=False), default=None, help="CA for mqtts:// or wss://.")


def _emit(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(report.to_json())
    else:
        frame = report.frame()
        cols = [c for c in ("id", "title", "outcome", "observed", "still_serving") if c in frame.columns]
        click.echo(frame[cols].to_string(index=False, max_colwidth=70))
        click.echo(f"\n{report.broker} at {report.target}: {report.counts}")
        for r in report.results:
            if r.outcome == "deviation":
                click.echo(f"  {r.id} deviation: {r.deviation}")
    if not report.ok:
        raise SystemExit(1)


@click.group()
def check() -> None:
    """Conformance, security and nothing-lost checks against the lab or any broker."""


@check.command("conformance")
@url_option
@ca_option
@state_dir_option
@json_option
@click.option("--broker", help="Broker name for its known deviations (default: read from $SYS).")
@click.option("--only", multiple=True, help="Run only these check ids (C01 ...).")
def conformance_cmd(url: str | None, ca_file: str | None, state_dir: Path | None, as_json: bool,
                    broker: str | None, only: tuple[str, ...]) -> None:
    """MQTT 3.1.1 / 5.0 behaviours, each tied to its normative statement."""
    from ..checks import conformance

    target: Any = url or Lab.connect(state_dir)
    _emit(conformance(target, broker=broker, only=list(only) or None, ca_file=ca_file), as_json)


@check.command("security")
@url_option
@ca_option
@state_dir_option
@json_option
@click.option("--device", "devices", multiple=True, help="A restricted account user:pass (give two) for ACL probes.")
@click.option("--tls-url", help="The TLS listener (mqtts://host:8883) for TLS probes.")
@click.option("--mtls-url", help="A listener that requires client certificates.")
def security_cmd(url: str | None, ca_file: str | None, state_dir: Path | None, as_json: bool,
                 devices: tuple[str, ...], tls_url: str | None, mtls_url: str | None) -> None:
    """Authentication, ACLs, hostile packets and TLS negatives; each says whether the broker kept serving."""
    from ..checks import security

    if devices and len(devices) != 2:
        raise ConfigError("give --device twice (two restricted accounts)", hint="--device a:pa --device b:pb")
    target: Any = url or Lab.connect(state_dir)
    _emit(security(target, devices=(devices[0], devices[1]) if devices else None, tls_url=tls_url,
                   mtls_url=mtls_url, ca_file=ca_file), as_json)


@check.command("nothing-lost")
@state_dir_option
@click.option("--sigterm", default=10, show_default=True, help="Broker SIGTERM restarts.")
@click.option("--sigkill", default=10, show_default=True, help="Broker SIGKILL restarts.")
@click.option("--rate", default=1000.0, show_default=True, help="Messages/s per stream (2 publishers x QoS 1 and 2).")
@click.option("--per-round", default=2000, show_default=True, help="Acknowledged messages between faults.")
@json_option
def nothing_lost_cmd(state_dir: Path | None, sigterm: int, sigkill: int, rate: float, per_round: int,
                     as_json: bool) -> None:
    """Sequenced QoS 1/2 traffic through broker restarts: every acknowledged message must arrive."""
    from ..checks import nothing_lost

    lab = Lab.connect(state_dir)
    verdict = nothing_lost(lab, ("SIGTERM",) * sigterm + ("SIGKILL",) * sigkill, rate=rate, per_round=per_round)
    if as_json:
        click.echo(json.dumps(verdict.as_dict(), indent=2))
    else:
        click.echo(verdict.frame().drop(columns=["reasons"]).to_string(index=False))
        click.echo(f"\n{verdict!r}; session present on every reconnect: {all(verdict.session_present)}")
    if not verdict.ok:
        raise SystemExit(1)
