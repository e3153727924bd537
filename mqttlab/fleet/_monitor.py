"""A receiver that checks every stamped message: loss, duplicates, reordering, end-to-end latency."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, ConnectRefused, MqttConnection
from ._stats import Latencies, SeqTracker, read_stamp
from ._target import Target


class MonitorCore:
    """Runs on the fleet loop; ``publisher_of(topic)`` says whose sequence a message belongs to."""

    def __init__(self, target: Target, filters: list[tuple[str, int]], *, client_id: str, version: int = 5,
                 clean: bool = True, session_expiry: int | None = None) -> None:
        self.target, self.filters = target, filters
        self.opts = ConnectOptions(target.host, target.port, client_id, target.username, target.password,
                                   version=version, transport=target.transport, ssl_context=target.ssl_context(),
                                   ws_path=target.ws_path, clean=clean, session_expiry=session_expiry)
        self.tracker = SeqTracker()
        self.latency = Latencies()
        self.per_second: Counter[int] = Counter()
        self.messages = 0
        self.unstamped = 0
        self.conn: MqttConnection | None = None
        self.started_at = 0.0
        self.session_present_log: list[bool] = []
        self.reconnects = 0
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    @staticmethod
    def publisher_of(topic: str) -> str:
        parts = topic.split("/")
        return parts[1] if len(parts) > 2 and parts[0] == "devices" else topic

    def on_message(self, conn: MqttConnection, pkt: w.Packet) -> None:
        now_ns = time.time_ns()
        self.messages += 1
        self.per_second[now_ns // 1_000_000_000] += 1
        stamp = read_stamp(pkt.payload, pkt.properties.get("user_property"))
        if stamp is None:
            self.unstamped += 1
            return
        seq, sent_ns = stamp
        self.tracker.observe(self.publisher_of(pkt.topic), seq)
        self.latency.add((now_ns - sent_ns) / 1e9)

    async def _connect(self) -> list[int]:
        self.conn = MqttConnection(self.opts, on_message=self.on_message)
        await self.conn.connect()
        self.session_present_log.append(self.conn.session_present)
        return await self.conn.subscribe(self.filters)

    async def start(self) -> list[int]:
        granted = await self._connect()
        self.started_at = time.time()
        self._watch = asyncio.get_running_loop().create_task(self._reconnect_forever())
        return granted

    async def _reconnect_forever(self) -> None:
        """Reconnect (and resubscribe) whenever the broker drops us, e.g. across a broker restart."""
        backoff = 0.05
        while not self._stopping:
            assert self.conn is not None
            await asyncio.shield(self.conn.closed)
            while not self._stopping:
                try:
                    await self._connect()
                    self.reconnects += 1
                    backoff = 0.05
                    break
                except (OSError, asyncio.TimeoutError, ConnectRefused, w.ProtocolError):
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        if self.conn is not None:
            await self.conn.disconnect()

    def report(self, sent: dict[str, int] | None = None) -> dict[str, Any]:
        return {**self.tracker.finish(sent), "messages": self.messages, "unstamped": self.unstamped,
                "reconnects": self.reconnects, "session_present": list(self.session_present_log),
                "latency": self.latency.summary()}

    def rate_series(self) -> list[tuple[float, int]]:
        """(epoch second, messages received in it), oldest first."""
        return sorted((float(s), n) for s, n in self.per_second.items())
