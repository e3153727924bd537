"""A receiver that checks every stamped message: loss, duplicates, reordering, end-to-end latency."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from . import _wire as w
from ._conn import ConnectOptions, MqttConnection
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

    async def start(self) -> list[int]:
        self.conn = MqttConnection(self.opts, on_message=self.on_message)
        await self.conn.connect()
        self.session_present_log.append(self.conn.session_present)
        self.started_at = time.time()
        return await self.conn.subscribe(self.filters)

    async def stop(self) -> None:
        if self.conn is not None:
            await self.conn.disconnect()

    def report(self, sent: dict[str, int] | None = None) -> dict[str, Any]:
        return {**self.tracker.finish(sent), "messages": self.messages, "unstamped": self.unstamped,
                "latency": self.latency.summary()}

    def rate_series(self) -> list[tuple[float, int]]:
        """(epoch second, messages received in it), oldest first."""
        return sorted((float(s), n) for s, n in self.per_second.items())
