"""A byte-level MQTT session for what a well-behaved client never sends (malformed packets, overflows)."""

from __future__ import annotations

import asyncio
import contextlib
import struct

from ..aio import _wire as w
from ..fleet._target import Target


class NotApplicable(Exception):
    """The check cannot run over this target (e.g. a byte-level probe over WebSocket): reported as skipped."""


class RawSession:
    """Write any bytes; read whole packets back; tell whether the broker closed the connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, version: int) -> None:
        self.reader, self.writer, self.version = reader, writer, version

    @classmethod
    async def open(cls, target: Target, version: int = 5, ssl_ctx: object = None) -> RawSession:
        if target.transport not in ("tcp", "tls"):
            raise NotApplicable("byte-level probes need a TCP or TLS listener (this one is WebSocket)")
        ctx = ssl_ctx if ssl_ctx is not None else target.ssl_context()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            target.host, target.port, ssl=ctx, server_hostname=target.host if ctx else None), 5)
        return cls(reader, writer, version)

    @classmethod
    async def connected(cls, target: Target, client_id: str, version: int = 5, **props: object) -> tuple[RawSession, w.Packet]:
        """Open and CONNECT with the target's credentials; returns the session and its CONNACK."""
        s = await cls.open(target, version)
        s.send(w.connect_packet(client_id, version=version, username=target.username, password=target.password,
                                keepalive=30, properties=dict(props) or None))
        ack = await s.read(5)
        if ack is None or ack.kind != w.CONNACK:
            raise ConnectionError(f"no CONNACK (got {ack})")
        return s, ack

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def _next(self, timeout: float) -> w.Packet | str:
        """The next whole packet, or "closed" (the peer ended the connection) or "timeout"."""
        try:
            first = await asyncio.wait_for(self.reader.read(1), timeout)
            if not first:
                return "closed"
            length, shift = 0, 0
            while True:
                b = (await asyncio.wait_for(self.reader.readexactly(1), timeout))[0]
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            body = await asyncio.wait_for(self.reader.readexactly(length), timeout) if length else b""
        except asyncio.TimeoutError:
            return "timeout"
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return "closed"
        return w.decode(first[0] >> 4, first[0] & 0x0F, memoryview(body), self.version)

    async def read(self, timeout: float = 3.0) -> w.Packet | None:
        """The next packet, or None when the connection closed or nothing came within ``timeout``."""
        got = await self._next(timeout)
        return None if isinstance(got, str) else got

    async def closed_by_peer(self, timeout: float = 3.0) -> tuple[bool, list[w.Packet]]:
        """Read until the broker closes (True) or ``timeout`` passes (False); returns what came meanwhile."""
        packets: list[w.Packet] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            got = await self._next(left)
            if isinstance(got, str):
                return got == "closed", packets
            packets.append(got)
        return False, packets

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


def publish_bytes(topic: bytes, payload: bytes, qos: int = 0, packet_id: int = 1, version: int = 5) -> bytes:
    """A PUBLISH whose topic is given as raw bytes (so it can be invalid UTF-8)."""
    first = 0x30 | (qos << 1)
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", packet_id) if qos else b"")
    body += (b"\x00" if version == 5 else b"") + payload
    return bytes([first]) + w.varint(len(body)) + body
