"""Benchmarks: connections, publish throughput, subscribe throughput, end-to-end latency.

Each returns a :class:`BenchResult` (summary table, JSON, DataFrame, plotly figure) and works
against the lab or any broker URL.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import psutil

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, MqttConnection
from ._stats import Latencies, SeqTracker, binary_stamp, read_stamp
from ._target import Target


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (10,000 connections need 10,000 descriptors)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class BenchResult:
    """What a benchmark measured. ``metrics`` are flat numbers; ``latency`` a percentile summary."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    latency: dict[str, Any] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"benchmark": self.name, "params": self.params, "metrics": self.metrics, "latency": self.latency}

    def table(self) -> str:
        rows = [(k, v) for k, v in self.metrics.items()] + [(f"latency {k}", v) for k, v in self.latency.items()]
        width = max(len(k) for k, _ in rows)

        def fmt(v: Any) -> str:
            return f"{v:,.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)

        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return "\n".join([f"{self.name} ({params})"] + [f"  {k:<{width}}  {fmt(v):>16}" for k, v in rows])

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([{"metric": k, "value": v} for k, v in {**self.metrics, **{
            f"latency_{k}": v for k, v in self.latency.items()}}.items()])

    def figure(self, targets_ms: dict[str, float] | None = None) -> Any:
        """Latency percentiles as a bar chart, with the plan's targets as lines when given."""
        import plotly.graph_objects as go

        keys = [k for k in ("p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms") if k in self.latency]
        fig = go.Figure(go.Bar(x=[k.replace("_ms", "").replace("_", ".") for k in keys],
                               y=[self.latency[k] for k in keys], name="measured"))
        for label, value in (targets_ms or {}).items():
            fig.add_hline(y=value, line_dash="dash", annotation_text=label)
        fig.update_layout(title=f"{self.name}: latency percentiles (ms)", yaxis_title="ms")
        return fig


class _Usage:
    """Broker CPU seconds and RSS over a run, when the broker is a local process we know."""

    def __init__(self, pid: int | None) -> None:
        self.proc = None
        if pid:
            try:
                self.proc = psutil.Process(pid)
                self.cpu0 = sum(self.proc.cpu_times()[:2])
            except psutil.Error:
                self.proc = None
        self.t0 = time.perf_counter()

    def result(self) -> dict[str, Any]:
        if self.proc is None:
            return {}
        try:
            cpu = sum(self.proc.cpu_times()[:2]) - self.cpu0
            return {"broker_cpu_pct": round(100 * cpu / (time.perf_counter() - self.t0), 1),
                    "broker_rss_mib": round(self.proc.memory_info().rss / 2**20, 1)}
        except psutil.Error:
            return {}


_SSL_CACHE: dict[Target, Any] = {}


def _options(target: Target, client_id: str, version: int) -> ConnectOptions:
    # one SSLContext per target: building one (and loading the CA) costs more than a handshake
    ctx = _SSL_CACHE.get(target)
    if ctx is None and target.transport in ("tls", "wss"):
        ctx = _SSL_CACHE[target] = target.ssl_context()
    return ConnectOptions(target.host, target.port, client_id, target.username, target.password, version=version,
                          transport=target.transport, ssl_context=ctx, ws_path=target.ws_path)


async def _connect_many(target: Target, n: int, version: int, prefix: str, **kw: Any) -> list[MqttConnection]:
    return [await MqttConnection(_options(target, f"{prefix}-{i}", version), **kw).connect() for i in range(n)]


async def _blast(conn: MqttConnection, first: int, topic: bytes, count: int, size: int, rate: float | None,
                 seq0: int = 0) -> None:
    """Publish ``count`` stamped messages as fast as flow control allows (or at ``rate`` per second)."""
    loop = asyncio.get_running_loop()
    qos = (first >> 1) & 3
    start = loop.time()
    for i in range(count):
        if rate is not None:
            due = start + i / rate
            if due > loop.time():
                conn.flush()
                await asyncio.sleep(due - loop.time())
        if not conn.writable.is_set():
            conn.flush()
            await conn.writable.wait()
        if qos and conn.window_full:
            conn.flush()
            await conn.wait_window()
        conn.send_publish(first, topic, binary_stamp(seq0 + i, size), batch=True)
        if i & 63 == 63:
            conn.flush()
            await asyncio.sleep(0)
    conn.flush()


async def _barrier(conn: MqttConnection, topic: bytes) -> None:
    """A QoS 1 publish after the stream: its PUBACK proves the broker processed everything before it."""
    first, _ = w.publish_prefix("x", 1)
    conn.send_publish(first, topic, b"")
    await conn.drain_acks(60)


async def bench_pub(target: Target, *, messages: int = 400_000, qos: int = 0, size: int = 64, clients: int = 4,
                    rate: float | None = None, version: int = 5) -> BenchResult:
    """Publish throughput: messages the broker has processed (QoS 0) or acknowledged (QoS 1/2) per second."""
    run = uuid.uuid4().hex[:6]
    acks = {"ok": 0, "error": 0}

    def on_ack(pid: int, reason: int) -> None:
        acks["error" if reason >= 0x80 else "ok"] += 1

    conns = await _connect_many(target, clients, version, f"bench-pub-{run}", on_ack=on_ack)
    first, topic = w.publish_prefix(f"bench/{run}/pub", qos)
    per = messages // clients
    usage = _Usage(target.broker_pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(_blast(c, first, topic, per, size, rate / clients if rate else None, i * per)
                           for i, c in enumerate(conns)))
    sent_s = time.perf_counter() - t0
    await asyncio.gather(*(_barrier(c, w.utf8(f"bench/{run}/barrier")) for c in conns))
    elapsed = time.perf_counter() - t0
    total = per * clients
    for c in conns:
        await c.disconnect()
    metrics: dict[str, Any] = {"sent": total, "elapsed_s": round(elapsed, 3), "rate_msg_s": round(total / elapsed),
                               "client_write_rate_msg_s": round(total / sent_s)}
    if qos:
        metrics.update({"acked": acks["ok"] - clients, "ack_errors": acks["error"]})
    metrics.update(usage.result())
    return BenchResult("pub", {"url": target.url(), "qos": qos, "size": size, "clients": clients,
                               "messages": messages, "protocol": "5" if version == 5 else "3.1.1"}, metrics)


async def bench_latency(target: Target, *, rate: float = 2000.0, duration: float = 10.0, qos: int = 1,
                        size: int = 64, version: int = 5, warmup: float = 1.0) -> BenchResult:
    """End-to-end latency at a fixed offered rate: one publisher, one subscriber, open loop."""
    run = uuid.uuid4().hex[:6]
    lat = Latencies()
    tracker = SeqTracker()
    counted = {"n": 0}
    warm_ns = [0]

    def on_message(conn: MqttConnection, pkt: w.Packet) -> None:
        now = time.time_ns()
        stamp = read_stamp(pkt.payload)
        if stamp is None:
            return
        seq, sent = stamp
        tracker.observe("pub", seq)
        counted["n"] += 1
        if sent >= warm_ns[0]:
            lat.add((now - sent) / 1e9)

    sub = (await _connect_many(target, 1, version, f"bench-lat-sub-{run}", on_message=on_message))[0]
    await sub.subscribe([(f"bench/{run}/lat", qos)])
    pub = (await _connect_many(target, 1, version, f"bench-lat-pub-{run}"))[0]
    first, topic = w.publish_prefix(f"bench/{run}/lat", qos)
    loop = asyncio.get_running_loop()
    total = int(rate * (duration + warmup))
    warm_ns[0] = time.time_ns() + int(warmup * 1e9)
    usage = _Usage(target.broker_pid)
    start = loop.time()
    sent = 0
    while sent < total:
        due = int((loop.time() - start) * rate) + 1
        while sent < min(due, total):
            if qos and pub.window_full:
                await pub.wait_window()
            pub.send_publish(first, topic, binary_stamp(sent, size))
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    deadline = loop.time() + 10
    while counted["n"] < total and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await pub.disconnect()
    await sub.disconnect()
    seq = tracker.finish({"pub": total})
    metrics = {"offered_rate": rate, "sent": total, "received": seq["received"], "lost": seq["lost"],
               "duplicates": seq["duplicates"], "reordered": seq["reordered"], **usage.result()}
    return BenchResult("latency", {"url": target.url(), "qos": qos, "rate": rate, "duration_s": duration, "size": size},
                       metrics, lat.summary(), lat.values_us().tolist())


async def bench_sub(target: Target, *, messages: int = 200_000, qos: int = 0, size: int = 64, publishers: int = 2,
                    rate: float | None = None, version: int = 5) -> BenchResult:
    """Subscribe throughput: one subscriber receiving what ``publishers`` send; loss and latency checked."""
    run = uuid.uuid4().hex[:6]
    tracker = SeqTracker()
    lat = Latencies()
    got = {"n": 0}

    def on_message(conn: MqttConnection, pkt: w.Packet) -> None:
        now = time.time_ns()
        stamp = read_stamp(pkt.payload)
        if stamp is None:
            return
        got["n"] += 1
        tracker.observe(pkt.topic, stamp[0])
        lat.add((now - stamp[1]) / 1e9)

    sub = (await _connect_many(target, 1, version, f"bench-sub-{run}", on_message=on_message))[0]
    await sub.subscribe([(f"bench/{run}/+", qos)])
    pubs = await _connect_many(target, publishers, version, f"bench-subpub-{run}")
    per = messages // publishers
    usage = _Usage(target.broker_pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(_blast(c, *w.publish_prefix(f"bench/{run}/p{i}", qos), per, size,
                                  rate / publishers if rate else None) for i, c in enumerate(pubs)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    last, still = -1, 0
    while got["n"] < per * publishers and loop.time() < deadline:
        await asyncio.sleep(0.05)
        still = still + 1 if got["n"] == last else 0
        if still > 40:  # two seconds without a message: what is missing is lost
            break
        last = got["n"]
    elapsed = time.perf_counter() - t0
    for c in [*pubs, sub]:
        await c.disconnect()
    seq = tracker.finish({f"bench/{run}/p{i}": per for i in range(publishers)})
    metrics = {"sent": per * publishers, "received": seq["received"], "lost": seq["lost"],
               "duplicates": seq["duplicates"], "reordered": seq["reordered"],
               "receive_rate_msg_s": round(seq["received"] / elapsed), **usage.result()}
    return BenchResult("sub", {"url": target.url(), "qos": qos, "size": size, "publishers": publishers,
                               "messages": messages}, metrics, lat.summary())


async def bench_conn(target: Target, *, count: int = 1000, rate: float = 3000.0, in_flight: int = 64,
                     version: int = 5, hold: float = 0.0) -> BenchResult:
    """Open ``count`` connections at up to ``rate``/s (< ``in_flight`` connecting at once), hold, close."""
    limit = raise_fd_limit()
    if count + 64 > limit:
        from ..errors import ConfigError

        raise ConfigError(f"{count} connections need more than the {limit} open files this process may have",
                          hint="lower count, or raise the hard limit (ulimit -Hn) where you can")
    run = uuid.uuid4().hex[:6]
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    lat = Latencies()
    sem = asyncio.Semaphore(in_flight)
    loop = asyncio.get_running_loop()
    conns: list[MqttConnection] = []
    failures = 0
    usage = _Usage(target.broker_pid)
    start = loop.time()

    async def one(i: int) -> None:
        nonlocal failures
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        async with sem:
            t = time.perf_counter()
            opts = _options(target, f"bench-conn-{run}-{i}", version)
            opts.keepalive = 300
            try:
                conns.append(await MqttConnection(opts).connect(timeout=30))
                lat.add(time.perf_counter() - t)
            except (OSError, asyncio.TimeoutError, Exception):
                failures += 1

    gc_was_enabled = gc.isenabled()
    gc.disable()  # a full collection over thousands of connections shows up as a connect-time tail
    try:
        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        if gc_was_enabled:
            gc.enable()
    elapsed = loop.time() - start
    rss_per = (proc.memory_info().rss - rss0) / max(1, len(conns))
    if hold:
        await asyncio.sleep(hold)
    alive = sum(1 for c in conns if not c.closed.done())
    broker = usage.result()
    for c in conns:
        c.abort()
    await asyncio.gather(*(c.closed for c in conns), return_exceptions=True)
    metrics = {"connections": len(conns), "failures": failures, "alive_after_hold": alive,
               "connect_rate_per_s": round(len(conns) / elapsed), "client_kib_per_connection": round(rss_per / 1024, 2),
               **broker}
    return BenchResult("conn", {"url": target.url(), "count": count, "rate": rate, "in_flight": in_flight},
                       metrics, lat.summary())


BENCHMARKS: dict[str, Callable[..., Coroutine[Any, Any, BenchResult]]] = {
    "pub": bench_pub, "sub": bench_sub, "latency": bench_latency, "conn": bench_conn}


def run_bench(kind: str, target: Target, **options: Any) -> BenchResult:
    """Run a benchmark to the end from synchronous code (a notebook cell, a script, the CLI)."""
    from ..aio._loop import LoopThread
    from ..errors import ConfigError

    if kind not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {kind!r}", hint=f"one of {', '.join(BENCHMARKS)}")
    loop = LoopThread("mqttlab-bench")
    try:
        result: BenchResult = loop.run(BENCHMARKS[kind](target, **options))
        return result
    finally:
        loop.stop()
