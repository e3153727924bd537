"""An asyncio MQTT connection built for load: TCP, TLS or WebSocket, QoS 0/1/2, MQTT 3.1.1 and 5."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _wire as w

OnMessage = Callable[["MqttConnection", w.Packet], None]
OnAck = Callable[[int, int], None]  # (packet id, reason code)


class ConnectRefused(Exception):
    """CONNACK with a failure code."""

    def __init__(self, reason: int) -> None:
        super().__init__(f"connection refused, reason code 0x{reason:02x}")
        self.reason = reason


@dataclass
class ConnectOptions:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    version: int = 5
    transport: str = "tcp"  # tcp | tls | ws | wss
    ssl_context: ssl.SSLContext | None = None
    ws_path: str = "/mqtt"
    keepalive: int = 60
    clean: bool = True
    session_expiry: int | None = None
    will: w.Will | None = None
    window: int = 1000  # most QoS 1/2 publishes in flight (the broker's receive maximum caps it further)
    properties: dict[str, Any] = field(default_factory=dict)


class _WebSocket:
    """Client-side WebSocket framing (RFC 6455) under the MQTT byte stream."""

    def __init__(self) -> None:
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.open = False
        self._buf = bytearray()

    def handshake(self, host: str, port: int, path: str) -> bytes:
        return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: mqtt\r\n\r\n").encode()

    @staticmethod
    def frame(data: bytes) -> bytes:
        n = len(data)
        mask = os.urandom(4)
        if n < 126:
            head = bytes([0x82, 0x80 | n])
        elif n < 65536:
            head = bytes([0x82, 0xFE]) + struct.pack("!H", n)
        else:
            head = bytes([0x82, 0xFF]) + struct.pack("!Q", n)
        key = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
        return head + mask + masked

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Unwrap frames; returns (MQTT bytes, handshake just completed)."""
        self._buf += data
        done = False
        if not self.open:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return b"", False
            status = bytes(self._buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                raise w.ProtocolError(f"websocket upgrade refused: {status.decode(errors='replace')}")
            del self._buf[: end + 4]
            self.open = done = True
        out = bytearray()
        while len(self._buf) >= 2:
            b1 = self._buf[1] & 0x7F
            pos = 2
            if b1 == 126:
                if len(self._buf) < 4:
                    break
                b1, pos = struct.unpack_from("!H", self._buf, 2)[0], 4
            elif b1 == 127:
                if len(self._buf) < 10:
                    break
                b1, pos = struct.unpack_from("!Q", self._buf, 2)[0], 10
            if len(self._buf) < pos + b1:
                break
            opcode = self._buf[0] & 0x0F
            if opcode in (0x0, 0x2):
                out += self._buf[pos: pos + b1]
            elif opcode == 0x8:
                raise ConnectionResetError("websocket closed by the server")
            del self._buf[: pos + b1]
        return bytes(out), done


class MqttConnection(asyncio.Protocol):
    """One MQTT session. Incoming PUBLISHes go to ``on_message``; acknowledgements to ``on_ack``."""

    def __init__(self, opts: ConnectOptions, on_message: OnMessage | None = None, on_ack: OnAck | None = None,
                 *, auto_ack: bool = True) -> None:
        """``auto_ack=False``: QoS 1 messages are acknowledged only when the caller calls :meth:`ack`
        (a recorder acknowledges after its write is durable, so the broker keeps what was not stored)."""
        self.auto_ack = auto_ack
        self.opts = opts
        self.version = opts.version
        self.on_message = on_message
        self.on_ack = on_ack
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._ws = _WebSocket() if opts.transport in ("ws", "wss") else None
        loop = asyncio.get_running_loop()
        self._connack: asyncio.Future[w.Packet] = loop.create_future()
        self._ws_ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[Exception | None] = loop.create_future()
        for fut in (self._connack, self._ws_ready):  # failures are read where awaited, or not at all
            fut.add_done_callback(_consume)
        self._next_id = 0
        self.inflight: dict[int, bytes] = {}  # packet id -> PUBLISH bytes, for QoS 1/2 awaiting their ack
        self._window_free = asyncio.Event()
        self._window_free.set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._window = opts.window
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}
        self._qos2_in: set[int] = set()
        self.session_present = False
        self.disconnect_reason: int | None = None  # set when the broker sent DISCONNECT (MQTT 5)
        self.connack_properties: dict[str, Any] = {}
        self._ping: asyncio.Task[None] | None = None
        self._out: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()

    # ------------------------------------------------------------------ connect
    async def connect(self, timeout: float = 10.0) -> MqttConnection:
        loop = asyncio.get_running_loop()
        o = self.opts
        ctx = o.ssl_context if o.transport in ("tls", "wss") else None
        await asyncio.wait_for(loop.create_connection(lambda: self, o.host, o.port, ssl=ctx,
                                                      server_hostname=o.host if ctx else None), timeout)
        if self._ws is not None:
            self._raw_write(self._ws.handshake(o.host, o.port, o.ws_path))
            await asyncio.wait_for(self._ws_ready, timeout)
        props = dict(o.properties)
        if o.session_expiry is not None and o.version == 5:
            props["session_expiry"] = o.session_expiry
        self.write(w.connect_packet(o.client_id, version=o.version, username=o.username, password=o.password,
                                    keepalive=o.keepalive, clean=o.clean, will=o.will, properties=props or None))
        ack = await asyncio.wait_for(self._connack, timeout)
        if ack.reason != 0:
            self.abort()
            raise ConnectRefused(ack.reason)
        self.session_present = ack.session_present
        self.connack_properties = ack.properties
        self._window = min(self._window, ack.properties.get("receive_maximum", 65535))
        if o.keepalive:
            self._ping = loop.create_task(self._keepalive(o.keepalive))
        return self

    async def _keepalive(self, seconds: int) -> None:
        while not self.closed.done():
            await asyncio.sleep(seconds * 0.75)
            if self.transport is not None and not self.transport.is_closing():
                self.write(w.PINGREQ_PACKET)

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ping is not None:
            self._ping.cancel()
        error = exc or ConnectionResetError("connection closed")
        waiting = [self._connack] + ([self._ws_ready] if self._ws is not None else [])
        for fut in waiting:
            if not fut.done():
                fut.set_exception(error)
        for sub in self._subacks.values():
            if not sub.done():
                sub.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(exc)
        self._window_free.set()
        self._drained.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        try:
            if self._ws is not None:
                data, opened = self._ws.feed(data)
                if opened and not self._ws_ready.done():
                    self._ws_ready.set_result(None)
            self._buf += data
            self._parse()
        except (w.ProtocolError, IndexError, struct.error, ConnectionResetError) as exc:
            if not self._connack.done():
                self._connack.set_exception(exc)
            self.abort()

    def _parse(self) -> None:
        buf = self._buf
        pos, end = 0, len(buf)
        view = memoryview(buf)
        try:
            while end - pos >= 2:
                first = buf[pos]
                # fast path: a PUBACK / PUBCOMP without reason code (the bulk of a QoS 1/2 load)
                if (first == 0x40 or first == 0x70) and buf[pos + 1] == 2:
                    if end - pos < 4:
                        break
                    self._acked((buf[pos + 2] << 8) | buf[pos + 3], 0)
                    pos += 4
                    continue
                try:
                    length, body = w.read_varint(buf, pos + 1)
                except IndexError:
                    break
                if body + length > end:
                    break
                pkt = w.decode(first >> 4, first & 0x0F, view[body: body + length], self.version)
                pos = body + length
                self._dispatch(pkt)
        finally:
            view.release()
            del buf[:pos]

    def _acked(self, pid: int, reason: int) -> None:
        if self.inflight.pop(pid, None) is not None:
            if len(self.inflight) < self._window:
                self._window_free.set()
                if not self.inflight:
                    self._drained.set()
            if self.on_ack is not None:
                self.on_ack(pid, reason)

    def _dispatch(self, pkt: w.Packet) -> None:
        kind = pkt.kind
        if kind == w.PUBLISH:
            if pkt.qos == 1:
                if self.auto_ack:
                    self.write(w.ack_packet(w.PUBACK, pkt.packet_id))
            elif pkt.qos == 2:
                if self.auto_ack:
                    self.write(w.ack_packet(w.PUBREC, pkt.packet_id))
                if pkt.packet_id in self._qos2_in:
                    return  # a resend of one we already delivered
                self._qos2_in.add(pkt.packet_id)
            if self.on_message is not None:
                self.on_message(self, pkt)
        elif kind == w.PUBACK or kind == w.PUBCOMP:
            self._acked(pkt.packet_id, pkt.reason)
        elif kind == w.PUBREC:
            if pkt.reason >= 0x80:
                self._acked(pkt.packet_id, pkt.reason)
            else:
                self.write(w.ack_packet(w.PUBREL, pkt.packet_id))
        elif kind == w.PUBREL:
            self._qos2_in.discard(pkt.packet_id)
            self.write(w.ack_packet(w.PUBCOMP, pkt.packet_id))
        elif kind == w.CONNACK:
            if not self._connack.done():
                self._connack.set_result(pkt)
        elif kind in (w.SUBACK, w.UNSUBACK):
            fut = self._subacks.pop(pkt.packet_id, None)
            if fut is not None and not fut.done():
                fut.set_result(pkt.reasons)
        elif kind == w.DISCONNECT:
            self.disconnect_reason = pkt.reason
            self.abort()

    # ------------------------------------------------------------------ sending
    def _raw_write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write(self, data: bytes) -> None:
        self._raw_write(self._ws.frame(data) if self._ws is not None else data)

    def next_packet_id(self) -> int:
        pid = self._next_id
        for _ in range(65535):
            pid = pid % 65535 + 1
            if pid not in self.inflight and pid not in self._subacks:
                self._next_id = pid
                return pid
        raise RuntimeError("no free packet id")

    async def wait_window(self) -> None:
        """Wait until another QoS 1/2 publish may be sent."""
        while len(self.inflight) >= self._window:
            if self.closed.done():
                raise ConnectionResetError("connection closed")
            self._window_free.clear()
            await self._window_free.wait()

    @property
    def window_full(self) -> bool:
        return len(self.inflight) >= self._window

    def send_publish(self, first: int, topic: bytes, payload: bytes, props: bytes = b"", *, batch: bool = False) -> int:
        """Write one PUBLISH from pre-encoded parts; returns its packet id (0 for QoS 0).

        With ``batch=True`` the packet is queued until :meth:`flush`: one socket write for many
        messages is what lets a single Python process offer 150k+ msg/s.
        """
        qos = (first >> 1) & 3
        pid = self.next_packet_id() if qos else 0
        if self.version == 5 and not props:
            props = b"\x00"
        packet = w.publish_packet(first, topic, payload, pid, props)
        if qos:
            self.inflight[pid] = packet
            self._drained.clear()
        if batch:
            self._out.append(packet)
        else:
            self.write(packet)
        return pid

    def ack(self, acks: list[tuple[int, int]]) -> None:
        """Acknowledge ``(packet id, qos)`` pairs received with ``auto_ack=False`` in one write
        (PUBACK for QoS 1, PUBREC for QoS 2; the PUBREL/PUBCOMP exchange that follows is automatic)."""
        packets = [w.ack_packet(w.PUBACK if qos == 1 else w.PUBREC, pid) for pid, qos in acks if qos in (1, 2)]
        if packets:
            self.write(b"".join(packets))

    def resend(self, unacked: dict[int, bytes]) -> None:
        """Resend publishes a previous connection left unacknowledged (same packet ids, DUP set)."""
        for pid, packet in unacked.items():
            self.inflight[pid] = packet
            self._drained.clear()
            self.write(bytes([packet[0] | 0x08]) + packet[1:])

    def flush(self) -> None:
        if self._out:
            data, self._out = b"".join(self._out), []
            self.write(data)

    async def subscribe(self, filters: list[tuple[str, int]], timeout: float = 10.0, options: int = 0) -> list[int]:
        pid = self.next_packet_id()
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._subacks[pid] = fut
        self.write(w.subscribe_packet(pid, filters, self.version, options))
        return await asyncio.wait_for(fut, timeout)

    async def unsubscribe(self, filters: list[str], timeout: float = 10.0) -> list[int]:
        pid = self.next_packet_id()
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._subacks[pid] = fut
        body = bytearray(struct.pack("!H", pid))
        if self.version == 5:
            body += b"\x00"
        for topic in filters:
            body += w.utf8(topic)
        self.write(b"\xa2" + w.varint(len(body)) + bytes(body))
        return await asyncio.wait_for(fut, timeout)

    async def drain_acks(self, timeout: float) -> bool:
        """Wait until every QoS 1/2 publish was acknowledged; False on timeout or loss of the connection."""
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return not self.inflight

    async def disconnect(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.write(w.DISCONNECT_PACKET)
            self.transport.close()
        if self._ping is not None:
            self._ping.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 2)
        except asyncio.TimeoutError:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
