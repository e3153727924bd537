"""A loopback TCP proxy whose traffic can be dropped, delayed or cut: network faults without root or tc."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType

from ..aio._loop import LoopThread


class NetworkProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``host:port``.

    Modes: ``heal()`` forwards; ``delay(s)`` holds every chunk ``s`` seconds; ``drop()`` reads and discards
    in both directions (a partition: connections stay open, nothing gets through); ``cut()`` closes every
    connection and refuses new ones until ``heal()``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.mode = "pass"
        self.delay_seconds = 0.0
        self.forwarded_bytes = 0
        self.dropped_bytes = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = LoopThread("mqttlab-proxy")
        self._server: asyncio.base_events.Server | None = None
        self.port = self._loop.run(self._start(), 10)

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        sock: socket.socket = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        for wr in (writer, up_writer):
            self._writers.discard(wr)
            wr.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.mode == "drop":
                self.dropped_bytes += len(data)
                continue
            if self.mode == "delay" and self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)  # the injected latency itself
            writer.write(data)
            self.forwarded_bytes += len(data)
            await writer.drain()
        writer.close()

    @property
    def url_port(self) -> int:
        return self.port

    def heal(self) -> None:
        self.mode, self.delay_seconds = "pass", 0.0

    def delay(self, seconds: float) -> None:
        self.mode, self.delay_seconds = "delay", seconds

    def drop(self) -> None:
        self.mode = "drop"

    def cut(self) -> None:
        """Close every proxied connection now (clients see a reset) and refuse new ones."""
        self.mode = "cut"

        def close_all() -> None:
            for wr in list(self._writers):
                with contextlib.suppress(Exception):
                    wr.transport.abort()
        self._loop.call(close_all)

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for wr in list(self._writers):
                wr.transport.abort()
        if self._loop.alive:
            with contextlib.suppress(Exception):
                self._loop.run(stop(), 5)
            self._loop.stop()

    def __enter__(self) -> NetworkProxy:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NetworkProxy 127.0.0.1:{self.port} -> {self.upstream[0]}:{self.upstream[1]} mode={self.mode}>"
