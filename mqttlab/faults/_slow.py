"""A subscriber that acknowledges slowly, so the broker has to queue (and, past its limit, drop) for it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from types import TracebackType

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, MqttConnection
from ..aio._loop import LoopThread
from ..fleet._target import Target


class SlowSubscriber:
    """Subscribes to ``topic`` at ``qos`` and acknowledges one message every ``per_message`` seconds.

    ``received`` counts deliveries; the broker keeps at most its receive window in flight and queues the
    rest (mosquitto: ``max_queued_messages``), which is what this fault is for.
    """

    def __init__(self, target: Target, topic: str, *, per_message: float = 0.05, qos: int = 1) -> None:
        self.topic, self.per_message, self.qos = topic, per_message, qos
        self.received = 0
        self._pending: asyncio.Queue[tuple[int, int]] | None = None
        self._loop = LoopThread("mqttlab-slow-sub")
        self._conn: MqttConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop.run(self._start(target), 15)

    async def _start(self, target: Target) -> None:
        self._pending = asyncio.Queue()
        opts = ConnectOptions(target.host, target.port, f"mqttlab-slow-{uuid.uuid4().hex[:8]}", target.username,
                              target.password, transport=target.transport, ssl_context=target.ssl_context(),
                              properties={"receive_maximum": 10})
        self._conn = MqttConnection(opts, on_message=self._on_message, auto_ack=False)
        await self._conn.connect(5)
        await self._conn.subscribe([(self.topic, self.qos)])
        self._task = asyncio.get_running_loop().create_task(self._acker())

    def _on_message(self, conn: MqttConnection, pkt: w.Packet) -> None:
        self.received += 1
        if pkt.qos and self._pending is not None:
            self._pending.put_nowait((pkt.packet_id, pkt.qos))

    async def _acker(self) -> None:
        assert self._pending is not None and self._conn is not None
        while True:
            ack = await self._pending.get()
            await asyncio.sleep(self.per_message)  # the slowness being simulated
            self._conn.ack([ack])

    def close(self) -> None:
        async def stop() -> None:
            if self._task is not None:
                self._task.cancel()
            if self._conn is not None:
                await self._conn.disconnect()
        if self._loop.alive:
            with contextlib.suppress(Exception):
                self._loop.run(stop(), 5)
            self._loop.stop()

    def __enter__(self) -> SlowSubscriber:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
