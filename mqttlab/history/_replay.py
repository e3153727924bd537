"""Replay recorded messages onto a broker: recorded order, inter-arrival times scaled, bytes preserved."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, MqttConnection
from ..aio._loop import LoopThread
from ..errors import ConfigError

#: properties worth replaying; topic aliases and subscription ids belong to the original connection
_REPLAYABLE = ("payload_format", "message_expiry", "content_type", "response_topic", "correlation_data",
               "user_property")


@dataclass
class ReplayReport:
    sent: int = 0
    total: int = 0
    duration_s: float = 0.0
    speed: float | str = 1.0
    cancelled: bool = False
    timing_error_ms: dict[str, float] = field(default_factory=dict)

    @property
    def rate_msg_s(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0


def _props(text: str | None) -> bytes:
    if not text:
        return b"\x00"
    try:
        props = json.loads(text)
    except ValueError:
        return b"\x00"
    keep: dict[str, Any] = {}
    for name in _REPLAYABLE:
        if name in props:
            value = props[name]
            if name == "correlation_data":
                value = bytes.fromhex(value)
            elif name == "user_property":
                value = [tuple(pair) for pair in value]
            keep[name] = value
    return w.encode_properties(keep)


class Replay:
    """A replay in progress: ``progress``, ``cancel()``, ``wait()`` -> :class:`ReplayReport`."""

    def __init__(self, table: pa.Table, opts: ConnectOptions, *, speed: float | str, to_prefix: str | None,
                 qos: int | None, loop: LoopThread | None = None) -> None:
        if speed != "max" and (not isinstance(speed, (int, float)) or speed <= 0):
            raise ConfigError(f"speed must be a positive number or 'max', got {speed!r}", hint="speed=1.0, 20 or 'max'")
        if qos is not None and qos not in (0, 1, 2):
            raise ConfigError(f"qos must be 0, 1 or 2, got {qos}", hint="or None to keep the recorded QoS")
        import dataclasses
        import uuid

        opts = dataclasses.replace(opts, client_id=f"{opts.client_id}-{uuid.uuid4().hex[:6]}")  # replays may overlap
        self.table, self.opts, self.speed, self.to_prefix, self.qos = table, opts, speed, to_prefix, qos
        self.report = ReplayReport(total=table.num_rows, speed=speed)
        self._cancel = threading.Event()
        self._own_loop = loop is None
        self._loop = loop or LoopThread("mqttlab-replay")
        self._future: Future[ReplayReport] = self._loop.submit(self._run())

    @property
    def progress(self) -> tuple[int, int]:
        return self.report.sent, self.report.total

    @property
    def running(self) -> bool:
        return not self._future.done()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None, *, progress: bool = False) -> ReplayReport:
        """Block until the replay ends (a tqdm bar, in notebooks a widget, with ``progress=True``)."""
        if progress:
            from tqdm.auto import tqdm

            with tqdm(total=self.report.total, unit="msg", desc="replay") as bar:
                while not self._future.done():
                    try:
                        self._future.result(timeout=0.2)
                    except TimeoutError:
                        pass
                    bar.update(self.report.sent - bar.n)
                bar.update(self.report.sent - bar.n)
        try:
            return self._future.result(timeout)
        finally:
            if self._own_loop and self._future.done():
                self._loop.stop()

    async def _run(self) -> ReplayReport:
        rep = self.report
        conn = MqttConnection(self.opts)
        await conn.connect()
        loop = asyncio.get_running_loop()
        topics = self.table.column("topic").to_pylist()
        payloads = self.table.column("payload").to_pylist()
        qos_col = self.table.column("qos").to_pylist()
        retain_col = self.table.column("retain").to_pylist()
        props_col = self.table.column("props").to_pylist() if "props" in self.table.column_names else [None] * len(topics)
        ts = np.asarray(self.table.column("ts").to_numpy(), dtype=np.int64)
        offsets = (ts - ts[0]) / 1e9 if len(ts) else ts
        errors = np.zeros(len(topics))
        prefix = self.to_prefix.rstrip("/") + "/" if self.to_prefix else ""
        fast = self.speed == "max"
        scale = 1.0 if fast else 1.0 / float(self.speed)
        t0 = time.perf_counter()
        start = loop.time() + 0.005
        try:
            for i in range(len(topics)):
                if self._cancel.is_set():
                    rep.cancelled = True
                    break
                qos = self.qos if self.qos is not None else int(qos_col[i])
                first, topic = w.publish_prefix(prefix + topics[i], qos, bool(retain_col[i]))
                if not fast:
                    due = start + float(offsets[i]) * scale
                    delay = due - loop.time()
                    if delay > 0:
                        conn.flush()
                        if delay > 0.0015:  # the event loop wakes late by up to ~1 ms: sleep most of the gap ...
                            await asyncio.sleep(delay - 0.001)
                        while loop.time() < due:  # ... and wait out the rest exactly
                            pass
                    errors[i] = (loop.time() - due) * 1000
                if not conn.writable.is_set():
                    conn.flush()
                    await conn.writable.wait()
                if qos and conn.window_full:
                    conn.flush()
                    await conn.wait_window()
                conn.send_publish(first, topic, bytes(payloads[i] or b""), _props(props_col[i]), batch=fast)
                rep.sent += 1
                if fast and i & 255 == 255:
                    conn.flush()
                    await asyncio.sleep(0)
            conn.flush()
            await conn.drain_acks(30)
        finally:
            rep.duration_s = time.perf_counter() - t0
            await conn.disconnect()
        if not fast and rep.sent:
            measured = errors[: rep.sent]
            rep.timing_error_ms = {"p50": float(np.percentile(measured, 50)), "p99": float(np.percentile(measured, 99)),
                                   "max": float(measured.max())}
        return rep
