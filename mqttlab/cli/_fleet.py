"""``mqttlab fleet run`` and ``mqttlab bench conn|pub|sub|latency``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from ..fleet import PROFILES, Rate, parse_url, run_bench
from ..fleet._target import Target, lab_target
from ..lab import Lab

state_dir_option = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                                 help="Lab state directory (when no --url is given)")


@click.group()
def fleet() -> None:
    """Simulated device fleets."""


@fleet.command("run")
@state_dir_option
@click.option("-n", "--count", type=int, default=10, show_default=True, help="Devices.")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="thermostat", show_default=True)
@click.option("--rate", type=float, default=1.0, show_default=True, help="Messages per second per device.")
@click.option("--pattern", type=click.Choice(["fixed", "poisson", "burst"]), default="fixed", show_default=True)
@click.option("--qos", type=click.IntRange(0, 2), default=1, show_default=True)
@click.option("--protocol", type=click.Choice(["5", "3.1.1"]), default="5", show_default=True)
@click.option("--transport", type=click.Choice(["tcp", "tls", "ws"]), default="tcp", show_default=True)
@click.option("--duration", type=float, help="Seconds to run.")
@click.option("--messages", type=int, help="Messages per device.")
@click.option("--prefix", default="sim", show_default=True, help="Device ids are <prefix>-00000, ...")
@click.option("--connect-rate", type=float, default=1000.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--check/--no-check", default=True, show_default=True, help="Subscribe and check loss and latency.")
@click.option("--json", "as_json", is_flag=True)
def run(state_dir: Path | None, count: int, profile: str, rate: float, pattern: str, qos: int, protocol: str,
        transport: str, duration: float | None, messages: int | None, prefix: str, connect_rate: float, seed: int,
        check: bool, as_json: bool) -> None:
    """Run a bounded fleet against the lab and print a summary (sent, acked, lost, latency)."""
    if duration is None and messages is None:
        raise click.UsageError("give --duration and/or --messages")
    with Lab.connect(state_dir) as lab:
        monitor = lab.fleet.monitor("devices/+/telemetry", qos=qos) if check else None
        t0 = time.perf_counter()
        handle = lab.fleet.start(count, profile, rate=Rate(rate, pattern), qos=qos, protocol=protocol,  # type: ignore[arg-type]
                                 transport=transport, duration=duration, messages=messages, prefix=prefix,
                                 connect_rate=connect_rate, seed=seed)
        status = handle.wait()
        summary: dict[str, Any] = {"fleet": status, "elapsed_s": round(time.perf_counter() - t0, 3)}
        if monitor is not None:
            if qos:
                monitor.wait_for(status["acked"], timeout=10)
            summary["check"] = monitor.report(handle.sent_per_device())
            monitor.stop()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    s = summary["fleet"]
    click.echo(f"fleet of {s['devices']} {profile} devices: sent {s['sent']}, acked {s['acked']}, "
               f"errors {s['ack_errors']}, reconnects {s['reconnects']}, {s['send_rate']} msg/s")
    if "check" in summary:
        c, lat = summary["check"], summary["check"]["latency"]
        click.echo(f"received {c['received']}, lost {c['lost']}, duplicates {c['duplicates']}, "
                   f"reordered {c['reordered']}")
        if lat.get("count"):
            click.echo(f"latency ms: p50 {lat['p50_ms']:.3f}  p99 {lat['p99_ms']:.3f}  max {lat['max_ms']:.3f}")


def _target(url: str | None, ca_file: str | None, insecure: bool, state_dir: Path | None, transport: str) -> Target:
    if url:
        return parse_url(url, ca_file=ca_file, insecure=insecure)
    with Lab.connect(state_dir) as lab:
        return lab_target(lab, transport)


def _bench_command(kind: str, extra: list[Any]) -> click.Command:
    def callback(url: str | None, ca_file: str | None, insecure: bool, state_dir: Path | None, transport: str,
                 as_json: bool, **options: Any) -> None:
        target = _target(url, ca_file, insecure, state_dir, transport)
        options = {k: v for k, v in options.items() if v is not None}
        if "protocol" in options:
            options["version"] = 5 if options.pop("protocol") == "5" else 4
        result = run_bench(kind, target, **options)
        click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.table())

    params = [
        click.Option(["--url"], help="Any broker: mqtt://user:pass@host:1883, mqtts://, ws://, wss:// (default: the lab)"),
        click.Option(["--ca-file"], help="CA bundle for mqtts/wss URLs."),
        click.Option(["--insecure"], is_flag=True, help="Do not verify the broker's certificate."),
        click.Option(["--state-dir"], type=click.Path(file_okay=False, path_type=Path)),
        click.Option(["--transport"], type=click.Choice(["tcp", "tls", "ws"]), default="tcp", show_default=True,
                     help="Lab listener to use when no --url is given."),
        click.Option(["--json", "as_json"], is_flag=True),
        *extra,
    ]
    doc = {"pub": "Publish throughput (broker-processed or acknowledged messages per second).",
           "sub": "Subscribe throughput with loss, duplicate and reorder checks.",
           "latency": "End-to-end latency percentiles at a fixed offered rate.",
           "conn": "Connection rate, connect-time percentiles, client memory per connection."}[kind]
    return click.Command(kind, callback=callback, params=params, help=doc)


_qos = click.Option(["--qos"], type=click.IntRange(0, 2))
_size = click.Option(["--size"], type=int, help="Payload bytes (>= 20).")
_proto = click.Option(["--protocol"], type=click.Choice(["5", "3.1.1"]))


@click.group()
def bench() -> None:
    """Benchmarks against the lab or any broker URL; each prints a table (or --json)."""


bench.add_command(_bench_command("pub", [_qos, _size, _proto, click.Option(["--messages"], type=int),
                                         click.Option(["--clients"], type=int), click.Option(["--rate"], type=float)]))
bench.add_command(_bench_command("sub", [_qos, _size, _proto, click.Option(["--messages"], type=int),
                                         click.Option(["--publishers"], type=int), click.Option(["--rate"], type=float)]))
bench.add_command(_bench_command("latency", [_qos, _size, _proto, click.Option(["--rate"], type=float),
                                             click.Option(["--duration"], type=float)]))
bench.add_command(_bench_command("conn", [_proto, click.Option(["--count"], type=int), click.Option(["--rate"], type=float),
                                          click.Option(["--in-flight"], "in_flight", type=int),
                                          click.Option(["--hold"], type=float)]))
