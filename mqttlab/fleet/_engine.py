"""Simulated device fleets: connect with a ramp, publish on schedule, react to commands and deltas."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, ConnectRefused, MqttConnection
from ._profiles import Profile, ProfileSpec, make_profile
from ._schedule import Rate
from ._target import Target

log = logging.getLogger(__name__)
Stamp = Literal["payload", "user_property"]


@dataclass(frozen=True)
class DeviceCredentials:
    id: str
    username: str
    password: str
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class FleetSpec:
    """How a fleet behaves. Defaults give a small, realistic thermostat fleet."""

    count: int = 10
    profile: ProfileSpec = "thermostat"
    prefix: str = "sim"
    rate: Rate = field(default_factory=Rate)
    qos: int = 1
    retain: bool = False
    protocol: str = "5"
    transport: str = "tcp"
    connect_rate: float = 1000.0  # new connections per second during the ramp
    clean: bool = True
    session_expiry: int | None = None
    will: bool = True  # a retained "offline" on devices/<id>/status if the device drops
    stamp: Stamp = "payload"
    seed: int = 0
    reactive: bool = True
    duration: float | None = None
    messages: int | None = None  # per device
    reconnect: bool = True
    backoff_max: float = 10.0
    properties: dict[str, Any] = field(default_factory=dict)  # extra MQTT 5 PUBLISH properties

    def device_ids(self) -> list[str]:
        return [f"{self.prefix}-{i:05d}" for i in range(self.count)]


@dataclass
class Counters:
    connected: int = 0
    connects: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    sent: int = 0
    acked: int = 0
    ack_errors: int = 0
    no_subscribers: int = 0  # MQTT 5 reason 0x10 on PUBACK
    commands: int = 0
    deltas: int = 0
    finished: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class _Ramp:
    """Limits the pace of new connections (the broker's listen backlog is only 100)."""

    def __init__(self, per_second: float, in_flight: int = 64) -> None:
        self.interval = 1.0 / per_second
        self.next = 0.0
        self.sem = asyncio.Semaphore(in_flight)

    async def slot(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = max(now, self.next)
        self.next = due + self.interval
        if due > now:
            await asyncio.sleep(due - now)


class SimulatedDevice:
    """One device: its own session, schedule, sequence numbers and reactions."""

    def __init__(self, fleet: FleetEngine, creds: DeviceCredentials, profile: Profile) -> None:
        self.fleet, self.creds, self.profile = fleet, creds, profile
        spec = fleet.spec
        self.telemetry = w.publish_prefix(f"devices/{creds.id}/telemetry", spec.qos, spec.retain)
        self.shadow_update = f"$aws/things/{creds.id}/shadow/update"
        self.seq = 0
        self.conn: MqttConnection | None = None
        self.unacked: dict[int, bytes] = {}
        self.telemetry_pids: set[int] = set()  # acks of status and report messages are not telemetry acks
        self.rng = random.Random(f"{spec.seed}:{creds.id}:sched")

    def _options(self) -> ConnectOptions:
        spec, t = self.fleet.spec, self.fleet.target
        will = None
        if spec.will:
            will = w.Will(f"devices/{self.creds.id}/status", b'{"online":false}', qos=1, retain=True)
        return ConnectOptions(
            t.host, t.port, self.creds.id, self.creds.username, self.creds.password,
            version=5 if spec.protocol.startswith("5") else 4, transport=t.transport,
            ssl_context=self.fleet.ssl_context, ws_path=t.ws_path, clean=spec.clean,
            session_expiry=spec.session_expiry, will=will, keepalive=60)

    async def connect(self, first: bool) -> bool:
        c = self.fleet.counters
        backoff = 0.2
        while not self.fleet.stopping.is_set():
            if first:
                await self.fleet.ramp.slot()
            conn = MqttConnection(self._options(), on_message=self._on_message, on_ack=self._on_ack)
            try:
                async with self.fleet.ramp.sem:
                    await conn.connect(timeout=10)
            except (OSError, asyncio.TimeoutError, ConnectRefused, w.ProtocolError) as exc:
                c.connect_failures += 1
                self.fleet.last_error = f"{self.creds.id}: {exc!r}"
                if not self.fleet.spec.reconnect or (isinstance(exc, ConnectRefused) and exc.reason in (0x86, 0x87, 4, 5)):
                    return False
                await asyncio.sleep(backoff * (0.5 + self.rng.random()))
                backoff = min(backoff * 2, self.fleet.spec.backoff_max)
                continue
            c.connects += 1
            c.connected += 1
            if not first:
                c.reconnects += 1
            self.conn = conn
            if conn.session_present and self.unacked:
                conn.resend(self.unacked)
            else:
                self.telemetry_pids.clear()  # a fresh session: those messages are lost, the monitor will say so
            self.unacked = {}
            if self.fleet.spec.will:
                conn.send_publish(*w.publish_prefix(f"devices/{self.creds.id}/status", 1, True), b'{"online":true}')
            if self.fleet.spec.reactive:
                await conn.subscribe([(f"devices/{self.creds.id}/cmd", 1), (f"{self.shadow_update}/delta", 1)])
            return True
        return False

    def _on_ack(self, pid: int, reason: int) -> None:
        if pid not in self.telemetry_pids:
            return
        self.telemetry_pids.discard(pid)
        c = self.fleet.counters
        c.acked += 1
        if reason >= 0x80:
            c.ack_errors += 1
        elif reason == 0x10:
            c.no_subscribers += 1
        self.fleet.on_ack(self.creds.id, pid, reason)

    def _on_message(self, conn: MqttConnection, pkt: w.Packet) -> None:
        try:
            body = json.loads(pkt.payload)
        except ValueError:
            return
        if pkt.topic.endswith("/update/delta"):
            self.fleet.counters.deltas += 1
            fields = self.profile.apply(body.get("state", {}))
            conn.send_publish(*w.publish_prefix(self.shadow_update, 1), json.dumps({"state": {"reported": fields}}).encode())
        elif isinstance(body, dict):
            self.fleet.counters.commands += 1
            fields = self.profile.apply(body)
            conn.send_publish(*w.publish_prefix(f"devices/{self.creds.id}/state", 1),
                              json.dumps({"applied": fields, "ts": time.time()}).encode())

    def _payload(self, t: float) -> tuple[bytes, bytes] | None:
        sample = self.profile.sample(t)
        if not sample:
            return None  # a dropout: nothing is sent, the sequence does not advance
        spec = self.fleet.spec
        now_ns = time.time_ns()
        props = dict(spec.properties)
        if spec.stamp == "payload":
            sample = {**sample, "seq": self.seq, "ts": now_ns}
        elif spec.protocol.startswith("5"):
            props["user_property"] = [("seq", str(self.seq)), ("ts", str(now_ns))]
        encoded = w.encode_properties(props) if spec.protocol.startswith("5") else b""
        return json.dumps(sample, separators=(",", ":")).encode(), encoded

    async def run(self) -> None:
        spec, fleet = self.fleet.spec, self.fleet
        if not await self.connect(first=True):
            return
        loop = asyncio.get_running_loop()
        start_wall, start = time.time(), loop.time()
        rate = fleet.rate
        phase = self.rng.random() / rate.per_second  # spread devices over the first interval
        anchor, due_times = start, rate.offsets(self.rng, phase)
        try:
            while not fleet.stopping.is_set():
                if spec.messages is not None and self.seq >= spec.messages:
                    break
                if fleet.rate is not rate:
                    rate = fleet.rate
                    anchor, due_times = loop.time(), rate.offsets(self.rng, 0.0)
                due = anchor + next(due_times)
                if spec.duration is not None and due - start > spec.duration:
                    break
                delay = due - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(fleet.stopping.wait(), delay)
                        break
                    except asyncio.TimeoutError:
                        pass
                conn = self.conn
                if conn is None or conn.closed.done():
                    fleet.counters.connected -= 1
                    self.unacked = dict(conn.inflight) if conn is not None else {}
                    self.conn = None
                    if not spec.reconnect or not await self.connect(first=False):
                        return
                    conn = self.conn
                    assert conn is not None
                if spec.qos and conn.window_full:
                    await conn.wait_window()
                made = self._payload(start_wall + (loop.time() - start))
                if made is None:
                    continue
                payload, props = made
                first, topic = self.telemetry
                pid = conn.send_publish(first, topic, payload, props)
                if pid:
                    self.telemetry_pids.add(pid)
                fleet.on_send(self.creds.id, self.seq, pid)
                self.seq += 1
                fleet.counters.sent += 1
            if self.conn is not None and spec.qos:
                await self.conn.drain_acks(10)
        finally:
            fleet.counters.finished += 1

    async def close(self) -> None:
        if self.conn is not None and not self.conn.closed.done():
            if self.fleet.spec.will:  # a clean goodbye, so no will fires
                self.conn.send_publish(*w.publish_prefix(f"devices/{self.creds.id}/status", 1, True), b'{"online":false}')
                await self.conn.drain_acks(2)
            await self.conn.disconnect()
            self.fleet.counters.connected -= 1


class FleetEngine:
    """Runs a fleet on an asyncio loop (the caller's or a :class:`LoopThread`)."""

    def __init__(self, spec: FleetSpec, target: Target, credentials: list[DeviceCredentials]) -> None:
        self.spec, self.target = spec, target
        self.counters = Counters()
        self.ssl_context = target.ssl_context()
        self.rate = spec.rate  # may be changed while running (set_rate); devices re-anchor their schedule
        self.stopping = asyncio.Event()
        self.ramp = _Ramp(spec.connect_rate)
        self.devices = [SimulatedDevice(self, c, make_profile(spec.profile, c.id, spec.seed)) for c in credentials]
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.last_error: str | None = None
        self.ack_listeners: list[Callable[[str, int, int], None]] = []
        self.send_listeners: list[Callable[[str, int, int], None]] = []

    def on_ack(self, device: str, pid: int, reason: int) -> None:
        for fn in self.ack_listeners:
            fn(device, pid, reason)

    def on_send(self, device: str, seq: int, pid: int) -> None:
        for fn in self.send_listeners:
            fn(device, seq, pid)

    async def run(self) -> Counters:
        self.started_at = time.time()
        try:
            await asyncio.gather(*(d.run() for d in self.devices))
        finally:
            await asyncio.gather(*(d.close() for d in self.devices), return_exceptions=True)
            self.ended_at = time.time()
        return self.counters

    def stop(self) -> None:
        self.stopping.set()

    def sent_per_device(self) -> dict[str, int]:
        return {d.creds.id: d.seq for d in self.devices}

    def with_spec(self, **changes: Any) -> FleetSpec:
        return replace(self.spec, **changes)
