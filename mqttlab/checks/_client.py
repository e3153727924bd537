"""Small helpers the checks share: connect with options, collect messages, wait without sleeping."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, MqttConnection
from ..fleet._target import Target


@dataclass
class Probe:
    """A connection that keeps what it receives and the acknowledgements it gets; waiters wake on both."""

    conn: MqttConnection = field(init=False)
    messages: list[w.Packet] = field(default_factory=list)
    acks: dict[int, int] = field(default_factory=dict)  # packet id -> reason code
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, conn: MqttConnection, pkt: w.Packet) -> None:
        self.messages.append(pkt)
        self.changed.set()

    def on_ack(self, pid: int, reason: int) -> None:
        self.acks[pid] = reason
        self.changed.set()

    async def until(self, condition: Any, timeout: float = 3.0) -> bool:
        """Wait until ``condition()`` holds; False when ``timeout`` passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                return bool(condition())
        return True

    async def wait(self, count: int, timeout: float = 3.0) -> bool:
        return await self.until(lambda: len(self.messages) >= count, timeout)

    async def closed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self.conn.closed), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def on(self, topic: str) -> list[w.Packet]:
        return [m for m in self.messages if m.topic == topic]


async def quiet(seconds: float) -> None:
    """Let ``seconds`` pass to show that nothing (more) arrives: a negative check needs a window."""
    await asyncio.sleep(seconds)


def options(target: Target, *, version: int = 5, client_id: str | None = None, **kw: Any) -> ConnectOptions:
    opts = ConnectOptions(target.host, target.port, client_id or f"chk-{uuid.uuid4().hex[:10]}", target.username,
                          target.password, version=version, transport=target.transport,
                          ssl_context=target.ssl_context(), ws_path=target.ws_path, keepalive=30)
    return replace(opts, **kw) if kw else opts


async def connect(target: Target, *, version: int = 5, client_id: str | None = None, auto_ack: bool = True,
                  **kw: Any) -> Probe:
    probe = Probe()
    probe.conn = MqttConnection(options(target, version=version, client_id=client_id, **kw),
                                on_message=probe.on_message, on_ack=probe.on_ack, auto_ack=auto_ack)
    probe.conn.closed.add_done_callback(lambda _: probe.changed.set())  # waiters also wake on a close
    await probe.conn.connect(timeout=5)
    return probe


def publish(probe: Probe, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
            props: dict[str, Any] | None = None) -> int:
    first, encoded = w.publish_prefix(topic, qos, retain)
    return probe.conn.send_publish(first, encoded, payload, w.encode_properties(props) if props else b"")


async def close(*probes: Probe) -> None:
    for p in probes:
        if not p.conn.closed.done():
            await p.conn.disconnect()
