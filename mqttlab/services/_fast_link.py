"""A high-volume broker connection for the services (rules, recorder), on its own asyncio loop thread.

paho's network loop handles ~6-7k rule messages/s in the services process; the fleet's asyncio codec
handles several times that, so message traffic goes through here and paho keeps the low-volume work
($SYS, twins).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, ConnectRefused, MqttConnection
from ..aio._loop import LoopThread
from ..rules._topic import topic_matches
from ._config import ServicesConfig

log = logging.getLogger("mqttlab.services.fastlink")
Handler = Callable[[str, bytes, int, bool, dict[str, Any]], None]


class FastLink:
    """Subscriptions are restored on every reconnect; publishes queue while disconnected or the window is full."""

    def __init__(self, cfg: ServicesConfig, name: str, *, clean: bool = True, session_expiry: int | None = None) -> None:
        self.cfg = cfg
        self.opts = ConnectOptions(cfg.broker_host, cfg.broker_port, f"mqttlab-{name}-{cfg.lab_id}", cfg.broker_user,
                                   cfg.broker_password, clean=clean, session_expiry=session_expiry, window=1000)
        self.subs: list[tuple[str, int, Handler]] = []
        self.connected = threading.Event()
        self.conn: MqttConnection | None = None
        self.loop_thread: LoopThread | None = None
        self._pending: deque[tuple[int, bytes, bytes, bytes]] = deque()
        self._flush_scheduled = False
        self._stopping = False
        self.dropped = 0

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.loop_thread = LoopThread(f"fastlink-{self.opts.client_id}")
        self.loop_thread.submit(self._run())

    def stop(self) -> None:
        self._stopping = True
        if self.loop_thread is not None:
            if self.conn is not None:
                try:
                    self.loop_thread.run(self._drain_and_close(), timeout=10)
                except Exception:  # stopping anyway
                    log.debug("fast link close failed", exc_info=True)
            self.loop_thread.stop()

    async def _drain_and_close(self) -> None:
        self._flush()
        if self.conn is not None:
            await self.conn.drain_acks(5)
            await self.conn.disconnect()

    async def _run(self) -> None:
        backoff = 0.05
        while not self._stopping:
            conn = MqttConnection(self.opts, on_message=self._on_message, on_ack=self._on_ack)
            try:
                await conn.connect()
                if self.subs:
                    await conn.subscribe([(f, q) for f, q, _ in self.subs])
            except (OSError, asyncio.TimeoutError, ConnectRefused, w.ProtocolError) as exc:
                log.info("fast link %s not connected yet: %r", self.opts.client_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self.conn = conn
            self.connected.set()
            self._pump()
            await asyncio.shield(conn.closed)
            self.connected.clear()
            self.conn = None
            if not self._stopping:
                log.warning("fast link %s lost its connection; reconnecting", self.opts.client_id)

    # ----------------------------------------------------------------- traffic
    def subscribe(self, topic_filter: str, qos: int, handler: Handler) -> None:
        """Route messages matching the filter to ``handler`` (called on the link's loop thread)."""
        self.subs.append((topic_filter, qos, handler))
        if self.loop_thread is not None and self.conn is not None:
            conn = self.conn
            self.loop_thread.submit(conn.subscribe([(topic_filter, qos)]))

    def _on_message(self, conn: MqttConnection, pkt: w.Packet) -> None:
        called: set[int] = set()
        for topic_filter, _, handler in self.subs:
            if id(handler) not in called and topic_matches(pkt.topic, topic_filter):
                called.add(id(handler))
                try:
                    handler(pkt.topic, pkt.payload, pkt.qos, pkt.retain, pkt.properties)
                except Exception:  # one failing handler must not stop the link
                    log.exception("handler for %s failed", topic_filter)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                properties: dict[str, Any] | None = None) -> None:
        """Queue a publish (any thread); it is sent in order, batched, within the broker's window."""
        first, encoded_topic = w.publish_prefix(topic, qos, retain)
        props = w.encode_properties(properties) if properties else b"\x00"
        item = (first, encoded_topic, payload, props)
        if self.loop_thread is not None and threading.current_thread() is self.loop_thread._thread:
            self._pending.append(item)
            self._schedule()
        elif self.loop_thread is not None:
            self.loop_thread.call(self._enqueue, item)

    def _enqueue(self, item: tuple[int, bytes, bytes, bytes]) -> None:
        self._pending.append(item)
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled and self.loop_thread is not None:
            self._flush_scheduled = True
            self.loop_thread.loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._flush_scheduled = False
        conn = self.conn
        if conn is None or conn.closed.done():
            if len(self._pending) > 100_000:  # disconnected for long: keep the newest, count the rest
                for _ in range(len(self._pending) - 100_000):
                    self._pending.popleft()
                    self.dropped += 1
            return
        while self._pending:
            first = self._pending[0][0]
            if first & 0x06 and conn.window_full:
                break
            first, topic, payload, props = self._pending.popleft()
            conn.send_publish(first, topic, payload, props, batch=True)
        conn.flush()

    def _flush(self) -> None:
        self._pump()

    def _on_ack(self, pid: int, reason: int) -> None:
        if self._pending:
            self._schedule()
