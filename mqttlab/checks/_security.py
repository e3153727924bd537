"""Security probes: authentication, ACL confinement, hostile input and TLS negatives.

Each probe states the expected behaviour, records what the broker did, then checks with an admin
round trip that the broker still serves others. Probes run one after another so that "still serving"
belongs to the probe just run.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..aio import _wire as w
from ..aio._conn import ConnectRefused
from ..fleet._target import Target
from ._client import Probe, close, connect, publish
from ._model import CheckReport, CheckResult
from ._raw import NotApplicable, RawSession, publish_bytes

WEAK = [("admin", "admin"), ("admin", "public"), ("admin", "password"), ("guest", "guest"),
        ("mosquitto", "mosquitto"), ("test", "test"), ("root", "root"), ("user", "")]


@dataclass
class SecurityTargets:
    """What the probes need: an admin account (observer), two restricted device accounts (optional),
    a TLS listener and a client-certificate listener (optional)."""

    admin: Target
    device_a: Target | None = None
    device_b: Target | None = None
    device_topic: str = "devices/{id}/telemetry"
    tls: Target | None = None
    mtls: Target | None = None


@dataclass
class Ctx:
    t: SecurityTargets
    run: str
    observer: Probe

    def topic(self, name: str) -> str:
        return f"mqttlab-check/{self.run}/{name}"


Verdict = tuple[bool, str]
Probe_ = Callable[[Ctx], Awaitable[Verdict | None]]  # None: not applicable (skipped)
PROBES: list[tuple[str, str, str, Probe_]] = []


def probe(id: str, title: str, expected: str) -> Callable[[Probe_], Probe_]:
    def register(fn: Probe_) -> Probe_:
        PROBES.append((id, title, expected, fn))
        return fn
    return register


async def _refused(target: Target, version: int) -> str:
    try:
        p = await connect(target, version=version)
    except ConnectRefused as exc:
        return f"refused 0x{exc.reason:02x}"
    except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
        return f"closed ({type(exc).__name__})"
    await close(p)
    return "ACCEPTED"


@probe("S01", "anonymous CONNECT", "refused (MQTT 5 and 3.1.1)")
async def anonymous(ctx: Ctx) -> Verdict:
    anon = replace(ctx.t.admin, username=None, password=None)
    got = [await _refused(anon, v) for v in (5, 4)]
    return "ACCEPTED" not in got, f"v5: {got[0]}, v3.1.1: {got[1]}"


@probe("S02", "default and weak credentials", "every well-known pair refused")
async def weak(ctx: Ctx) -> Verdict:
    pairs = [*WEAK, (ctx.t.admin.username or "admin", "")]
    accepted = []
    for user, password in pairs:
        if await _refused(replace(ctx.t.admin, username=user, password=password), 5) == "ACCEPTED":
            accepted.append(f"{user}:{password}")
    return not accepted, f"accepted: {accepted}" if accepted else f"{len(pairs)} pairs refused"


async def _sub_codes(target: Target, filters: list[str], client_id: str | None = None) -> dict[str, int]:
    p = await connect(target, client_id=client_id)
    codes = {f: (await p.conn.subscribe([(f, 1)]))[0] for f in filters}
    await close(p)
    return codes


@probe("S03", "restricted account subscribes to `#`, `+/+/+` and `$SYS/#`", "refused in the SUBACK (>= 0x80)")
async def wide_subscribe(ctx: Ctx) -> Verdict | None:
    if ctx.t.device_a is None:
        return None
    codes = await _sub_codes(ctx.t.device_a, ["#", "+/+/+", "$SYS/#", "$SYS/broker/version"])
    granted = [f for f, c in codes.items() if c < 0x80]
    return not granted, f"granted: {granted}" if granted else f"codes {codes}"


async def _forged_publish(ctx: Ctx, dev: Target, client_id: str | None) -> Verdict:
    assert ctx.t.device_b is not None
    victim = ctx.t.device_topic.format(id=ctx.t.device_b.username)
    own = ctx.t.device_topic.format(id=dev.username)
    p = await connect(dev, client_id=client_id)
    publish(p, victim, b"forged-" + ctx.run.encode(), 1)
    publish(p, own, b"marker-" + ctx.run.encode(), 1)
    marker = await ctx.observer.until(lambda: any(m.payload == b"marker-" + ctx.run.encode()
                                                  for m in ctx.observer.messages))
    await close(p)
    forged = [m for m in ctx.observer.messages if m.payload == b"forged-" + ctx.run.encode()]
    if not marker:
        return False, "the device's own marker never arrived: cannot tell"
    return not forged, f"forged message delivered to {victim}" if forged else "forged message not delivered"


@probe("S04", "cross-device publish", "a device cannot publish on another device's topics")
async def cross_publish(ctx: Ctx) -> Verdict | None:
    if ctx.t.device_a is None or ctx.t.device_b is None:
        return None
    return await _forged_publish(ctx, ctx.t.device_a, None)


@probe("S05", "cross-device subscribe", "a device cannot subscribe to another device's topics")
async def cross_subscribe(ctx: Ctx) -> Verdict | None:
    if ctx.t.device_a is None or ctx.t.device_b is None:
        return None
    victim = ctx.t.device_topic.format(id=ctx.t.device_b.username)
    codes = await _sub_codes(ctx.t.device_a, [victim, victim.rsplit("/", 1)[0] + "/#"])
    granted = [f for f, c in codes.items() if c < 0x80]
    return not granted, f"granted: {granted}" if granted else f"codes {codes}"


@probe("S06", "client id `#` or `+` against pattern ACLs", "confinement holds whatever the client id")
async def wildcard_client_id(ctx: Ctx) -> Verdict | None:
    if ctx.t.device_a is None or ctx.t.device_b is None:
        return None
    notes = []
    for cid in ("#", "+"):
        try:
            codes = await _sub_codes(ctx.t.device_a, ["devices/+/telemetry", "#"], client_id=cid)
        except ConnectRefused as exc:
            notes.append(f"client id {cid!r} refused 0x{exc.reason:02x}")
            continue
        if any(c < 0x80 for c in codes.values()):
            return False, f"client id {cid!r} granted {codes}"
        ok, seen = await _forged_publish(ctx, ctx.t.device_a, cid)
        if not ok:
            return False, f"client id {cid!r}: {seen}"
        notes.append(f"client id {cid!r}: subscriptions refused, forged publish dropped")
    return True, "; ".join(notes)


async def _raw_closes(ctx: Ctx, data: bytes, version: int = 5, connected: bool = True) -> Verdict:
    if connected:
        s, _ = await RawSession.connected(ctx.t.admin, f"sec-{uuid.uuid4().hex[:8]}", version)
    else:
        s = await RawSession.open(ctx.t.admin, version)
    s.send(data)
    closed, got = await s.closed_by_peer(3)
    await s.close()
    reasons = [f"0x{p.reason:02x}" for p in got if p.kind == w.DISCONNECT]
    seen = f"closed{' with DISCONNECT ' + ','.join(reasons) if reasons else ''}" if closed else "connection kept open"
    return closed, seen


@probe("S07", "PUBLISH to a wildcard topic", "connection closed [MQTT-3.3.2-2]")
async def wildcard_topic(ctx: Ctx) -> Verdict:
    return await _raw_closes(ctx, publish_bytes(ctx.topic("#").encode(), b"w", 1))


@probe("S08", "invalid UTF-8 in a topic", "connection closed [MQTT-1.5.4-1]")
async def bad_utf8(ctx: Ctx) -> Verdict:
    return await _raw_closes(ctx, publish_bytes(ctx.topic("x").encode() + b"\xc3\x28", b"u", 1))


@probe("S09", "U+0000 in a topic", "connection closed [MQTT-1.5.4-2]")
async def nul_topic(ctx: Ctx) -> Verdict:
    return await _raw_closes(ctx, publish_bytes(ctx.topic("x").encode() + b"\x00y", b"n", 1))


@probe("S10", "topic 1,000 levels deep", "refused or delivered; never a crash")
async def deep_topic(ctx: Ctx) -> Verdict:
    deep = ctx.topic("deep") + "/x" * 1000
    p = await connect(ctx.t.admin)
    pid = publish(p, deep, b"d", 1)
    acked = await p.until(lambda: pid in p.acks or p.conn.closed.done())
    reason = p.acks.get(pid)
    await close(p)
    seen = (f"PUBACK 0x{reason:02x}" if reason is not None else "connection closed" if acked else "no answer")
    return acked, seen


@probe("S11", "payload larger than the broker's maximum packet size", "refused (connection closed, 0x95 in MQTT 5)")
async def oversized(ctx: Ctx) -> Verdict:
    s, ack = await RawSession.connected(ctx.t.admin, f"sec-{uuid.uuid4().hex[:8]}")
    limit = ack.properties.get("maximum_packet_size")
    await s.close()
    if limit is None or limit > 64 * 1024 * 1024:
        size = 16 * 1024 * 1024
        note = f"no limit announced; sent {size} bytes"
    else:
        size, note = limit + 1, f"limit {limit}"
    ok, seen = await _raw_closes(ctx, publish_bytes(ctx.topic("big").encode(), b"x" * size, 1))
    return ok, f"{note}: {seen}"


@probe("S12", "malformed remaining length (5-byte varint)", "connection closed [MQTT-1.5.5]")
async def bad_length(ctx: Ctx) -> Verdict:
    return await _raw_closes(ctx, b"\x30\xff\xff\xff\xff\x7f")


@probe("S13", "reserved packet type 0", "connection closed [MQTT-2.1.2]")
async def reserved_type(ctx: Ctx) -> Verdict:
    return await _raw_closes(ctx, b"\x00\x00")


@probe("S14", "AUTH packet from an MQTT 3.1.1 client", "connection closed (type 15 is reserved in 3.1.1)")
async def auth_in_311(ctx: Ctx) -> Verdict:
    return await _raw_closes(ctx, b"\xf0\x00", version=4)


@probe("S15", "CONNECT twice", "connection closed [MQTT-3.1.0-2]")
async def connect_twice(ctx: Ctx) -> Verdict:
    t = ctx.t.admin
    return await _raw_closes(ctx, w.connect_packet("again", username=t.username, password=t.password))


@probe("S16", "PUBLISH before CONNECT", "connection closed [MQTT-3.1.0-1]")
async def publish_first(ctx: Ctx) -> Verdict:
    return await _raw_closes(ctx, publish_bytes(ctx.topic("early").encode(), b"e", 0), connected=False)


@probe("S17", "reconnect storm (300 connects, 100 sharing one client id)", "all answered; broker keeps serving")
async def storm(ctx: Ctx) -> Verdict:
    t0 = time.monotonic()
    ids = [f"storm-{ctx.run}-{i}" for i in range(200)] + [f"storm-{ctx.run}-same"] * 100
    gate = asyncio.Semaphore(50)

    async def one(cid: str) -> bool:
        async with gate:
            try:
                p = await connect(ctx.t.admin, client_id=cid)
            except (ConnectRefused, ConnectionError, OSError, asyncio.TimeoutError):
                return False
            p.conn.abort()
            return True
    ok = sum(await asyncio.gather(*(one(c) for c in ids)))
    rate = len(ids) / (time.monotonic() - t0)
    return ok == len(ids), f"{ok}/{len(ids)} connects accepted at {rate:,.0f}/s"


async def _tls_fails(target: Target, ctx_ssl: ssl.SSLContext, hostname: str | None = None) -> str:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            target.host, target.port, ssl=ctx_ssl, server_hostname=hostname or target.host), 5)
    except ssl.SSLError as exc:
        return f"handshake failed: {exc.reason or exc}"
    except (ConnectionError, OSError) as exc:
        return f"refused: {type(exc).__name__}"
    # TLS 1.3 reports a missing client certificate after the handshake, on the first read
    try:
        writer.write(w.connect_packet("tls-probe", username=target.username, password=target.password))
        data = await asyncio.wait_for(reader.read(4), 3)
    except ssl.SSLError as exc:
        return f"refused after handshake: {exc.reason or exc}"
    except (ConnectionError, OSError) as exc:
        return f"refused after handshake: {type(exc).__name__}"
    finally:
        writer.close()
    return "closed without CONNACK" if not data else "CONNECTED"


@probe("S18", "TLS: broker certificate checked against an untrusted CA", "handshake fails")
async def untrusted_ca(ctx: Ctx) -> Verdict | None:
    if ctx.t.tls is None:
        return None
    from ..pki import CertificateAuthority

    with tempfile.TemporaryDirectory() as d:
        other = CertificateAuthority(Path(d), "mqttlab untrusted probe CA")
        c = ssl.create_default_context(cafile=str(other.cert_path))
        seen = await _tls_fails(ctx.t.tls, c)
    return seen.startswith(("handshake failed", "refused")), seen


@probe("S19", "TLS: wrong hostname", "handshake fails (certificate not valid for the name)")
async def wrong_host(ctx: Ctx) -> Verdict | None:
    if ctx.t.tls is None:
        return None
    seen = await _tls_fails(ctx.t.tls, ssl.create_default_context(cafile=ctx.t.tls.ca_file), "not-the-broker.invalid")
    return seen.startswith(("handshake failed", "refused")), seen


@probe("S20", "TLS: client-certificate listener without a certificate", "refused")
async def no_client_cert(ctx: Ctx) -> Verdict | None:
    if ctx.t.mtls is None:
        return None
    seen = await _tls_fails(ctx.t.mtls, ssl.create_default_context(cafile=ctx.t.mtls.ca_file))
    return seen != "CONNECTED", seen


@probe("S21", "plain MQTT sent to the TLS listener", "refused; nothing served in clear text")
async def plain_on_tls(ctx: Ctx) -> Verdict | None:
    if ctx.t.tls is None:
        return None
    plain = replace(ctx.t.tls, transport="tcp")
    return await _plain(plain)


async def _plain(target: Target) -> Verdict:
    try:
        p = await connect(target)
    except (ConnectRefused, ConnectionError, OSError, asyncio.TimeoutError) as exc:
        return True, f"refused ({type(exc).__name__})"
    await close(p)
    return False, "CONNACK in clear text"


async def _still_serving(ctx: Ctx) -> bool:
    """An admin round trip through the broker: can others still use it?"""
    token = f"alive-{uuid.uuid4().hex[:6]}".encode()
    try:
        p = await connect(ctx.t.admin)
        publish(p, ctx.topic("alive"), token, 1)
        ok = await ctx.observer.until(lambda: any(m.payload == token for m in ctx.observer.messages), 5)
        await close(p)
        return ok
    except (ConnectRefused, ConnectionError, OSError, asyncio.TimeoutError):
        return False


async def run_security(targets: SecurityTargets, broker: str) -> CheckReport:
    run = uuid.uuid4().hex[:8]
    observer = await connect(targets.admin)
    await observer.conn.subscribe([(f"mqttlab-check/{run}/#", 1), ("devices/#", 1)])
    ctx = Ctx(targets, run, observer)
    report = CheckReport("security", targets.admin.url(), broker)
    for pid, title, expected, fn in PROBES:
        t0 = time.monotonic()
        observed = "not applicable (no account or listener given)"
        try:
            verdict = await asyncio.wait_for(fn(ctx), 30)
        except NotApplicable as exc:
            verdict, observed = None, str(exc)
            outcome = "skipped"
        except Exception as exc:  # a probe that could not run says why; the rest go on
            verdict = (False, f"error: {type(exc).__name__}: {exc}")
            outcome = "error"
        else:
            outcome = "skipped" if verdict is None else ("pass" if verdict[0] else "fail")
        serving = await _still_serving(ctx)
        if not serving and outcome == "pass":
            outcome = "fail"
        if verdict is not None:
            observed = verdict[1]
        report.results.append(CheckResult(pid, title, "", "5.0/3.1.1", outcome, expected, observed,  # type: ignore[arg-type]
                                          still_serving=serving, seconds=round(time.monotonic() - t0, 3)))
    await close(observer)
    return report
