"""MQTT 3.1.1 and 5.0 broker conformance checks, each tied to the normative statement it tests.

Every check uses its own topics under ``mqttlab-check/<run>/`` and its own client ids, so they run
concurrently; a check returns ``(passed, observed)``. Negative checks ("nothing arrives") need a short
window of silence, which is the only waiting here that is not on a condition.
"""

from __future__ import annotations

import time

from ..aio import _wire as w
from ._client import close, connect, publish, quiet
from ._raw import RawSession, publish_bytes
from ._registry import CHECKS, Context, Outcome, check, hx, pair

__all__ = ["CHECKS"]


# --------------------------------------------------------------------------- QoS flows
@check("C01", "QoS 0 message delivered", "[MQTT-4.3.1-1]", "5.0", "one copy at QoS 0")
async def qos0(ctx: Context) -> Outcome:
    sub, pub, t = await pair(ctx, "qos0", 0)
    publish(pub, t, b"q0")
    ok = await sub.wait(1)
    await close(sub, pub)
    return ok and sub.messages[0].payload == b"q0", f"received {len(sub.messages)} message(s)"


@check("C02", "QoS 1 PUBACK and delivery (3.1.1)", "[MQTT-4.3.2-1]", "3.1.1",
       "PUBACK to the publisher; the subscriber gets it at QoS 1")
async def qos1(ctx: Context) -> Outcome:
    sub, pub, t = await pair(ctx, "qos1", 1, version=4)
    pid = publish(pub, t, b"q1", 1)
    acked = await pub.until(lambda: pid in pub.acks)
    got = await sub.wait(1)
    await close(sub, pub)
    qos = sub.messages[0].qos if got else None
    return acked and qos == 1, f"PUBACK={'yes' if acked else 'no'}, delivered at QoS {qos}"


@check("C03", "QoS 2 exactly once", "[MQTT-4.3.3-1]", "5.0",
       "PUBREC/PUBREL/PUBCOMP completes; exactly one copy at QoS 2")
async def qos2(ctx: Context) -> Outcome:
    sub, pub, t = await pair(ctx, "qos2", 2)
    pid = publish(pub, t, b"q2", 2)
    done = await pub.until(lambda: pid in pub.acks)
    await sub.wait(1)
    await quiet(0.3)
    await close(sub, pub)
    qos = [m.qos for m in sub.messages]
    return done and qos == [2], f"PUBCOMP={'yes' if done else 'no'}, deliveries at QoS {qos}"


@check("C04", "delivered at the lower of publish and subscribe QoS", "[MQTT-3.8.4-8]", "5.0",
       "QoS 2 publish to a QoS 1 subscription arrives at QoS 1")
async def downgrade(ctx: Context) -> Outcome:
    sub, pub, t = await pair(ctx, "downgrade", 1)
    publish(pub, t, b"d", 2)
    await sub.wait(1)
    await close(sub, pub)
    qos = [m.qos for m in sub.messages]
    return qos == [1], f"deliveries at QoS {qos}"


async def _overlap(ctx: Context, version: int, name: str) -> Outcome:
    """Both subscription orders: a broker that keeps the first match's QoS fails one of them."""
    t = ctx.topic(f"{name}/x")
    wide = (ctx.topic(f"{name}/#"), 0)
    a = await connect(ctx.target, version=version, client_id=ctx.cid(name + "a"))
    await a.conn.subscribe([wide])
    await a.conn.subscribe([(t, 2)])
    b = await connect(ctx.target, version=version, client_id=ctx.cid(name + "b"))
    await b.conn.subscribe([(t, 2)])
    await b.conn.subscribe([wide])
    pub = await connect(ctx.target, version=version)
    publish(pub, t, b"o", 2)
    await a.wait(1)
    await b.wait(1)
    await quiet(0.3)
    await close(a, b, pub)
    qa, qb = sorted(m.qos for m in a.messages), sorted(m.qos for m in b.messages)
    ok = bool(qa) and bool(qb) and max(qa) == 2 and max(qb) == 2
    return ok, f"wildcard first: copies at QoS {qa}; exact first: copies at QoS {qb}"


@check("C05", "overlapping subscriptions: maximum QoS (3.1.1)", "[MQTT-3.3.5-1]", "3.1.1",
       "a copy at QoS 2 when `x/#` is QoS 0 and `x/x` is QoS 2")
async def overlap311(ctx: Context) -> Outcome:
    return await _overlap(ctx, 4, "overlap4")


@check("C06", "overlapping subscriptions: a copy per subscription or the maximum QoS (5.0)", "[MQTT-3.3.4-2]", "5.0",
       "a copy at QoS 2")
async def overlap5(ctx: Context) -> Outcome:
    return await _overlap(ctx, 5, "overlap5")


# --------------------------------------------------------------------------- retained
@check("C07", "retained message delivered to a new subscriber; empty payload clears it", "[MQTT-3.3.1-6] [MQTT-3.3.1-10]", "5.0",
       "retained copy with RETAIN=1; nothing after clearing")
async def retained(ctx: Context) -> Outcome:
    t = ctx.topic("retained")
    pub = await connect(ctx.target)
    pid = publish(pub, t, b"keep", 1, retain=True)
    await pub.until(lambda: pid in pub.acks)
    s1 = await connect(ctx.target)
    await s1.conn.subscribe([(t, 1)])
    got = await s1.wait(1)
    pid = publish(pub, t, b"", 1, retain=True)
    await pub.until(lambda: pid in pub.acks)
    s2 = await connect(ctx.target)
    await s2.conn.subscribe([(t, 1)])
    await quiet(0.3)
    await close(pub, s1, s2)
    first = got and s1.messages[0].retain and s1.messages[0].payload == b"keep"
    return bool(first) and not s2.messages, f"retained delivered={'yes' if first else 'no'}, after clearing: {len(s2.messages)}"


@check("C08", "retain handling 1 and 2", "[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]", "5.0",
       "RH=2 sends nothing; RH=1 only on a new subscription")
async def retain_handling(ctx: Context) -> Outcome:
    t = ctx.topic("rh")
    pub = await connect(ctx.target)
    pid = publish(pub, t, b"r", 1, retain=True)
    await pub.until(lambda: pid in pub.acks)
    s2 = await connect(ctx.target)
    await s2.conn.subscribe([(t, 1)], options=0x20)
    s1 = await connect(ctx.target)
    await s1.conn.subscribe([(t, 1)], options=0x10)
    await s1.wait(1)
    await s1.conn.subscribe([(t, 1)], options=0x10)  # existing subscription: no retained copy now
    await quiet(0.3)
    await close(s1, s2)
    pid = publish(pub, t, b"", 1, retain=True)  # clear it, once nobody listens
    await pub.until(lambda: pid in pub.acks)
    await close(pub)
    return len(s1.messages) == 1 and not s2.messages, f"RH=1 copies {len(s1.messages)}, RH=2 copies {len(s2.messages)}"


@check("C09", "retain as published", "[MQTT-3.3.1-12] [MQTT-3.3.1-13]", "5.0",
       "RAP=1 keeps RETAIN=1 on a live message; RAP=0 clears it")
async def rap(ctx: Context) -> Outcome:
    t = ctx.topic("rap")
    a = await connect(ctx.target)
    await a.conn.subscribe([(t, 1)], options=0x08)
    b = await connect(ctx.target)
    await b.conn.subscribe([(t, 1)])
    pub = await connect(ctx.target)
    publish(pub, t, b"live", 1, retain=True)
    await a.wait(1)
    await b.wait(1)
    publish(pub, t, b"", 1, retain=True)
    await close(pub, a, b)
    fa = [m.retain for m in a.messages][:1]
    fb = [m.retain for m in b.messages][:1]
    return fa == [True] and fb == [False], f"RAP=1 retain flags {fa}, RAP=0 retain flags {fb}"


# --------------------------------------------------------------------------- wills
@check("C10", "will published when the connection drops", "[MQTT-3.1.2-8]", "3.1.1",
       "the will arrives after a network failure")
async def will(ctx: Context) -> Outcome:
    t = ctx.topic("will")
    sub = await connect(ctx.target, version=4)
    await sub.conn.subscribe([(t, 1)])
    dev = await connect(ctx.target, version=4, will=w.Will(t, b"gone", 1))
    dev.conn.abort()
    got = await sub.wait(1, 5)
    await close(sub)
    return got, "will received" if got else "no will within 5 s"


@check("C11", "no will after a normal DISCONNECT", "[MQTT-3.1.2-10]", "3.1.1", "nothing published")
async def no_will(ctx: Context) -> Outcome:
    t = ctx.topic("nowill")
    sub = await connect(ctx.target, version=4)
    await sub.conn.subscribe([(t, 1)])
    dev = await connect(ctx.target, version=4, will=w.Will(t, b"gone", 1))
    await dev.conn.disconnect()
    await quiet(0.5)
    await close(sub)
    return not sub.messages, f"{len(sub.messages)} will message(s)"


@check("C12", "will delay interval", "[MQTT-3.1.3-9]", "5.0", "the will arrives no sooner than its 1 s delay")
async def will_delay(ctx: Context) -> Outcome:
    got, after = await _will_after_drop(ctx, "willdelay", session_expiry=30, will_delay=1)
    return got and after >= 0.9, f"will after {after:.2f} s" if got else "no will within 5 s"


async def _will_after_drop(ctx: Context, name: str, *, session_expiry: int, will_delay: int) -> tuple[bool, float]:
    """Drop a connection that has a delayed will; (will arrived within 5 s, seconds until it did)."""
    t = ctx.topic(name)
    sub = await connect(ctx.target)
    await sub.conn.subscribe([(t, 1)])
    dev = await connect(ctx.target, session_expiry=session_expiry,
                        will=w.Will(t, b"gone", 1, properties={"will_delay": will_delay}))
    t0 = time.monotonic()
    dev.conn.abort()
    got = await sub.wait(1, 5)
    after = time.monotonic() - t0
    await close(sub)
    return got, after


@check("C13", "will sent when the session ends before the will delay", "[MQTT-3.1.3-9] §3.1.2.5", "5.0",
       "session expiry 0, will delay 3 s: the will arrives at once")
async def will_session_end(ctx: Context) -> Outcome:
    got, after = await _will_after_drop(ctx, "willend", session_expiry=0, will_delay=3)
    return got and after < 1.5, f"will after {after:.2f} s" if got else "no will within 5 s"


# --------------------------------------------------------------------------- sessions
@check("C14", "session present and offline queueing", "[MQTT-3.2.2-2] [MQTT-3.1.2-5]", "5.0",
       "session_present=1 on resume; QoS 1 messages sent while offline delivered")
async def session(ctx: Context) -> Outcome:
    t, cid = ctx.topic("session"), ctx.cid("session")
    s = await connect(ctx.target, client_id=cid, clean=False, session_expiry=60)
    await s.conn.subscribe([(t, 1)])
    await s.conn.disconnect()
    pub = await connect(ctx.target)
    pids = [publish(pub, t, str(i).encode(), 1) for i in range(3)]
    await pub.until(lambda: all(p in pub.acks for p in pids))
    s2 = await connect(ctx.target, client_id=cid, clean=False, session_expiry=0)
    got = await s2.wait(3)
    present = s2.conn.session_present
    await close(pub, s2)
    return present and got, f"session_present={int(present)}, queued delivered {len(s2.messages)}/3"


@check("C15", "session expiry interval", "[MQTT-3.1.2-23]", "5.0",
       "after a 1 s expiry the session is gone (session_present=0)")
async def session_expiry(ctx: Context) -> Outcome:
    cid = ctx.cid("expiry")
    s = await connect(ctx.target, client_id=cid, clean=False, session_expiry=1)
    await s.conn.subscribe([(ctx.topic("expiry"), 1)])
    await s.conn.disconnect()
    await quiet(2.2)
    s2 = await connect(ctx.target, client_id=cid, clean=False, session_expiry=0)
    present = s2.conn.session_present
    await close(s2)
    return not present, f"session_present={int(present)} after 2.2 s"


@check("C16", "client id takeover", "[MQTT-3.1.4-3]", "5.0", "the older connection is closed (DISCONNECT 0x8E)")
async def takeover(ctx: Context) -> Outcome:
    cid = ctx.cid("takeover")
    a = await connect(ctx.target, client_id=cid)
    b = await connect(ctx.target, client_id=cid)
    closed = await a.closed(3)
    reason = a.conn.disconnect_reason
    await close(b)
    return closed, f"old connection closed={closed}, reason={hx(reason) if reason is not None else 'none'}"


# --------------------------------------------------------------------------- topics
@check("C17", "`#` does not match `$` topics", "[MQTT-4.7.2-1]", "5.0",
       "a `#` subscriber does not get a `$aws/...` message a `$aws/#` subscriber gets")
async def dollar(ctx: Context) -> Outcome:
    t = f"$aws/mqttlab-check/{ctx.run}"
    every = await connect(ctx.target)
    await every.conn.subscribe([("#", 0)])
    control = await connect(ctx.target)
    await control.conn.subscribe([("$aws/mqttlab-check/#", 0)])
    pub = await connect(ctx.target)
    publish(pub, t, b"$")
    seen = await control.until(lambda: bool(control.on(t)))
    await quiet(0.2)
    await close(every, control, pub)
    if not seen:
        return False, "could not publish to a $ topic (control subscriber got nothing)"
    leaked = every.on(t)
    return not leaked, f"`#` subscriber got {len(leaked)}"


@check("C18", "shared subscription: each message to one member", "§4.8.2", "5.0",
       "20 messages split over two members, none twice")
async def shared(ctx: Context) -> Outcome:
    t, share = ctx.topic("shared"), f"$share/g{ctx.run}/{ctx.topic('shared')}"
    a, b = await connect(ctx.target), await connect(ctx.target)
    await a.conn.subscribe([(share, 1)])
    await b.conn.subscribe([(share, 1)])
    pub = await connect(ctx.target)
    for i in range(20):
        publish(pub, t, str(i).encode(), 1)
    await a.until(lambda: len(a.messages) + len(b.messages) >= 20)
    await quiet(0.2)
    await close(a, b, pub)
    got = sorted(int(m.payload) for m in a.messages + b.messages)
    return got == list(range(20)), f"members got {len(a.messages)} + {len(b.messages)}"


@check("C19", "no local", "[MQTT-3.8.3-3]", "5.0", "a no-local subscriber does not get its own message")
async def no_local(ctx: Context) -> Outcome:
    t = ctx.topic("nolocal")
    me = await connect(ctx.target)
    await me.conn.subscribe([(t, 1)], options=0x04)
    other = await connect(ctx.target)
    await other.conn.subscribe([(t, 1)])
    publish(me, t, b"self", 1)
    await other.wait(1)
    await quiet(0.2)
    await close(me, other)
    return bool(other.messages) and not me.messages, f"own copies {len(me.messages)}, other got {len(other.messages)}"


@check("C20", "topic alias", "[MQTT-3.3.2-12]", "5.0",
       "a PUBLISH with only an alias reaches subscribers of the aliased topic")
async def alias(ctx: Context) -> Outcome:
    sub, pub, t = await pair(ctx, "alias", 0)
    if not pub.conn.connack_properties.get("topic_alias_maximum"):
        await close(sub, pub)
        return False, "broker offers no topic aliases (topic_alias_maximum 0)"
    publish(pub, t, b"1", props={"topic_alias": 1})
    publish(pub, "", b"2", props={"topic_alias": 1})
    await sub.wait(2)
    await close(sub, pub)
    return [m.payload for m in sub.on(t)] == [b"1", b"2"], f"received {[m.payload for m in sub.messages]}"


@check("C21", "message expiry", "[MQTT-3.3.2-5] [MQTT-3.3.2-6]", "5.0",
       "an expired queued message is dropped; the other's expiry is counted down")
async def expiry(ctx: Context) -> Outcome:
    t, cid = ctx.topic("msgexpiry"), ctx.cid("msgexpiry")
    s = await connect(ctx.target, client_id=cid, clean=False, session_expiry=60)
    await s.conn.subscribe([(t, 1)])
    await s.conn.disconnect()
    pub = await connect(ctx.target)
    p1 = publish(pub, t, b"short", 1, props={"message_expiry": 1})
    p2 = publish(pub, t, b"long", 1, props={"message_expiry": 60})
    await pub.until(lambda: p1 in pub.acks and p2 in pub.acks)
    await quiet(2.2)
    s2 = await connect(ctx.target, client_id=cid, clean=False, session_expiry=0)
    await s2.wait(1)
    await quiet(0.2)
    await close(pub, s2)
    got = [(m.payload, m.properties.get("message_expiry")) for m in s2.messages]
    ok = len(got) == 1 and got[0][0] == b"long" and (got[0][1] or 99) < 60
    return ok, f"delivered {got}"


@check("C22", "request/response properties forwarded", "[MQTT-3.3.2-15] [MQTT-3.3.2-16]", "5.0",
       "response topic and correlation data unchanged")
async def request_response(ctx: Context) -> Outcome:
    sub, pub, t = await pair(ctx, "reqresp", 1)
    publish(pub, t, b"?", 1, props={"response_topic": ctx.topic("reply"), "correlation_data": b"\x00\x01id"})
    await sub.wait(1)
    await close(sub, pub)
    props = sub.messages[0].properties if sub.messages else {}
    ok = props.get("response_topic") == ctx.topic("reply") and props.get("correlation_data") == b"\x00\x01id"
    return ok, f"properties {props}"


@check("C23", "user properties forwarded in order", "[MQTT-3.3.2-17] [MQTT-3.3.2-18]", "5.0",
       "all pairs, repeated keys and order kept")
async def user_properties(ctx: Context) -> Outcome:
    sub, pub, t = await pair(ctx, "userprops", 1)
    pairs = [("a", "1"), ("b", "2"), ("a", "3")]
    publish(pub, t, b"u", 1, props={"user_property": pairs})
    await sub.wait(1)
    await close(sub, pub)
    got = sub.messages[0].properties.get("user_property") if sub.messages else None
    return got == pairs, f"received {got}"


@check("C24", "client maximum packet size respected", "[MQTT-3.1.2-24] [MQTT-3.1.2-25]", "5.0",
       "a message larger than the client's limit is not sent to it; smaller ones are")
async def max_packet(ctx: Context) -> Outcome:
    t = ctx.topic("maxpacket")
    sub = await connect(ctx.target, properties={"maximum_packet_size": 256})
    await sub.conn.subscribe([(t, 1)])
    pub = await connect(ctx.target)
    publish(pub, t, b"x" * 1000, 1)
    publish(pub, t, b"small", 1)
    await sub.wait(1)
    await quiet(0.2)
    alive = not sub.conn.closed.done()
    await close(sub, pub)
    sizes = [len(m.payload) for m in sub.messages]
    return sizes == [5] and alive, f"payload sizes {sizes}, still connected={alive}"


@check("C25", "client receive maximum respected", "[MQTT-3.3.4-9]", "5.0",
       "with receive maximum 2 and no acks, only 2 QoS 1 messages are in flight")
async def receive_max_client(ctx: Context) -> Outcome:
    t = ctx.topic("rcvmax")
    sub = await connect(ctx.target, auto_ack=False, properties={"receive_maximum": 2})
    await sub.conn.subscribe([(t, 1)])
    pub = await connect(ctx.target)
    for i in range(5):
        publish(pub, t, str(i).encode(), 1)
    await sub.wait(2)
    await quiet(0.3)
    held = len(sub.messages)
    sub.conn.ack([(m.packet_id, 1) for m in sub.messages])
    rest = await sub.wait(3)
    await close(sub, pub)
    return held == 2 and rest, f"in flight before acks {held}; after acks {len(sub.messages)} of 5"


@check("C26", "server receive maximum overflow", "[MQTT-3.3.4-7] §3.3.4", "5.0",
       "more QoS 2 publishes than the broker's receive maximum: DISCONNECT 0x93")
async def receive_max_server(ctx: Context) -> Outcome:
    s, ack = await RawSession.connected(ctx.target, ctx.cid("rcvmax-srv"))
    limit = ack.properties.get("receive_maximum", 65535)
    if limit > 5000:
        await s.close()
        return False, f"receive maximum {limit} too large to overflow in a check"
    t = ctx.topic("rcvmax-srv").encode()
    s.send(b"".join(publish_bytes(t, b"o", 2, i + 1) for i in range(limit + 1)))  # never PUBREL: all stay in flight
    closed, got = await s.closed_by_peer(3)
    await s.close()
    refused = [p.reason for p in got if p.kind == w.PUBREC and p.reason >= 0x80]
    disconnect = [p.reason for p in got if p.kind == w.DISCONNECT]
    ok = disconnect[:1] == [0x93]
    seen = f"DISCONNECT {[hx(r) for r in disconnect]}" if disconnect else f"closed={closed}"
    return ok, f"limit {limit}: {seen}, PUBREC failures {sorted({hx(r) for r in refused})}"


@check("C27", "wildcards are refused in PUBLISH topics", "[MQTT-3.3.2-2]", "3.1.1", "the connection is closed")
async def wildcard_publish(ctx: Context) -> Outcome:
    s, _ = await RawSession.connected(ctx.target, ctx.cid("wildpub"), version=4)
    s.send(publish_bytes(ctx.topic("+").encode(), b"w", 0, version=4))
    closed, _ = await s.closed_by_peer(3)
    await s.close()
    return closed, f"connection closed={closed}"


@check("C28", "keep alive enforced", "[MQTT-3.1.2-24]", "3.1.1",
       "a silent client with keep alive 2 s is disconnected within 1.5x (3 s)")
async def keepalive(ctx: Context) -> Outcome:
    s = await RawSession.open(ctx.target, 4)
    s.send(w.connect_packet(ctx.cid("keepalive"), version=4, username=ctx.target.username,
                            password=ctx.target.password, keepalive=2))
    await s.read(3)
    t0 = time.monotonic()
    closed, _ = await s.closed_by_peer(8)
    after = time.monotonic() - t0
    await s.close()
    return closed and after <= 3.2, f"closed after {after:.1f} s" if closed else "still open after 8 s"
