"""The nothing-lost check: per-publisher sequence ledgers against a persistent-session subscriber, through faults.

Publishers stamp ``<publisher>:<seq>`` at QoS 1 and 2 and keep a ledger of every sequence number the broker
acknowledged (with its reason code). A subscriber with a persistent session (clean start 0, session expiry
1 h) records everything it receives and ``session_present`` on every reconnect. Between rounds of traffic a
fault runs (e.g. broker SIGKILL + restart). The verdict lists acknowledged messages never received (must be
none), duplicates and reorderings (allowed at QoS 1, reported).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..aio import _wire as w
from ..aio._conn import MqttConnection
from ..fleet._target import Target
from ._client import options

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class StreamVerdict:
    publisher: str
    qos: int
    sent: int
    acked: int
    received_unique: int
    missing: list[int]
    duplicates: int
    reordered: int
    reasons: dict[str, int]


@dataclass
class LedgerVerdict:
    """Result of :func:`nothing_lost`: ``ok`` when every acknowledged message was received and every
    reconnect found its session."""

    faults: list[dict[str, Any]]
    streams: list[StreamVerdict]
    session_present: list[bool]
    seconds: float

    @property
    def missing(self) -> int:
        return sum(len(s.missing) for s in self.streams)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and all(self.session_present) and bool(self.streams)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**asdict(s), "missing": len(s.missing)} for s in self.streams]
        return pd.DataFrame(rows)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "missing": self.missing, "faults": self.faults,
                "session_present": self.session_present, "seconds": self.seconds,
                "streams": [asdict(s) for s in self.streams]}

    def __repr__(self) -> str:
        acked = sum(s.acked for s in self.streams)
        return (f"<LedgerVerdict ok={self.ok} faults={len(self.faults)} acked={acked} missing={self.missing} "
                f"duplicates={sum(s.duplicates for s in self.streams)}>")


class _Publisher:
    def __init__(self, target: Target, name: str, topic: str, qos: int, rate: float,
                 changed: asyncio.Event | None = None) -> None:
        self.target, self.name, self.topic, self.qos, self.rate = target, name, topic, qos, rate
        self.changed = changed or asyncio.Event()
        self.next_seq = 0
        self.acked: dict[int, int] = {}  # seq -> reason code
        self.failed: Counter[int] = Counter()  # reason codes >= 0x80 (those seqs are retried)
        self.pending: dict[int, int] = {}  # packet id -> seq on the current connection
        self.unacked: list[int] = []  # seqs a lost connection left unacknowledged: sent again
        self.conn: MqttConnection | None = None
        self.stop = False

    def _on_ack(self, pid: int, reason: int) -> None:
        seq = self.pending.pop(pid, None)
        if seq is None:
            return
        self.changed.set()
        if reason < 0x80:
            self.acked[seq] = reason
        else:
            self.failed[reason] += 1
            self.unacked.append(seq)

    async def run(self) -> None:
        first, encoded = w.publish_prefix(self.topic, self.qos)
        step = 0.01
        per_step = max(1, int(self.rate * step))
        while not self.stop:
            if self.conn is None or self.conn.closed.done():
                self.unacked.extend(self.pending.values())
                self.pending = {}
                self.conn = await _reconnect(self.target, f"nl-{self.name}", self._on_ack, clean=True, expiry=0)
                if self.conn is None:
                    continue
            for _ in range(per_step):
                if self.conn.window_full:
                    break
                seq = self.unacked.pop(0) if self.unacked else self._new_seq()
                pid = self.conn.send_publish(first, encoded, f"{self.name}:{seq}".encode())
                self.pending[pid] = seq
            await asyncio.sleep(step)  # pacing: the offered rate

    def _new_seq(self) -> int:
        self.next_seq += 1
        return self.next_seq


async def _reconnect(target: Target, client_id: str, on_ack: Any = None, on_message: Any = None, *,
                     clean: bool, expiry: int = 3600, deadline: float = 30.0) -> MqttConnection | None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    delay = 0.02
    while loop.time() < end:
        conn = MqttConnection(options(target, client_id=client_id, clean=clean, session_expiry=expiry,
                                      keepalive=10), on_message=on_message, on_ack=on_ack)
        try:
            return await conn.connect(timeout=3)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            conn.abort()
            await asyncio.sleep(delay)  # reconnect back-off while the broker is down
            delay = min(delay * 2, 0.5)
    return None


async def run_nothing_lost(target: Target, faults: list[Callable[[], dict[str, Any]]], *,
                           publishers: int = 2, rate: float = 1000.0, per_round: int = 2000,
                           offline_during_faults: bool = False, drain_timeout: float = 20.0) -> LedgerVerdict:
    """Traffic, then each fault in turn (run in a thread: they block), then drain and compare ledgers.

    ``offline_during_faults``: the subscriber disconnects (its session stays) half-way through each round,
    so the broker must hold the rest of the round's messages for it when the fault hits: this exposes
    what a broker keeps only in memory.
    """
    t_start = time.monotonic()
    run = uuid.uuid4().hex[:8]
    base = f"mqttlab-check/{run}/nothing-lost"
    received: dict[str, list[int]] = {}
    presence: list[bool] = []
    changed = asyncio.Event()

    def on_message(conn: MqttConnection, pkt: w.Packet) -> None:
        name, _, seq = pkt.payload.decode().partition(":")
        received.setdefault(name, []).append(int(seq))
        changed.set()

    sub_id = f"nl-sub-{run}"
    # clean start 0 from the first connect: mosquitto 2.0.11 did not persist a session created with
    # clean start 1 across a SIGTERM restart (seen here), and the client id is new anyway
    first = await _reconnect(target, sub_id, on_message=on_message, clean=False)
    if first is None:
        raise ConnectionError(f"cannot connect the subscriber to {target.url()}")
    sub: MqttConnection = first
    await sub.subscribe([(f"{base}/#", 2)])

    async def resume() -> MqttConnection:
        conn = await _reconnect(target, sub_id, on_message=on_message, clean=False)
        if conn is None:
            raise ConnectionError("the subscriber could not reconnect after a fault")
        presence.append(conn.session_present)
        if not conn.session_present:  # a real client subscribes again; the verdict still records the loss
            await conn.subscribe([(f"{base}/#", 2)])
        return conn

    pubs = [_Publisher(target, f"p{i}q{q}", f"{base}/p{i}q{q}", q, rate, changed)
            for i in range(publishers) for q in (1, 2)]
    tasks = [asyncio.get_running_loop().create_task(p.run()) for p in pubs]
    done_faults: list[dict[str, Any]] = []

    async def resume_if_dropped() -> None:
        nonlocal sub
        if sub.closed.done():
            sub = await resume()

    async def until(condition: Callable[[], bool], timeout: float,
                    tick: Callable[[], Awaitable[None]] | None = None) -> None:
        """Wake on every acknowledgement or delivery until ``condition()`` holds or ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition() and (left := end - loop.time()) > 0:
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
            if tick is not None:
                await tick()

    async def traffic(count: int) -> None:
        goal = sum(len(p.acked) for p in pubs) + count
        await until(lambda: sum(len(p.acked) for p in pubs) >= goal, 30)

    try:
        for fault in faults:
            await traffic(per_round // 2 if offline_during_faults else per_round)
            if offline_during_faults:
                await sub.disconnect()
                await traffic(per_round - per_round // 2)
            done_faults.append(await asyncio.to_thread(fault))
            sub = await resume()
        await traffic(per_round)
    finally:
        for p in pubs:
            p.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    for p in pubs:  # let the last acknowledgements arrive
        if p.conn is not None and not p.conn.closed.done():
            await p.conn.drain_acks(5)

    def all_in() -> bool:
        return all(set(p.acked) <= set(received.get(p.name, ())) for p in pubs)

    await until(all_in, drain_timeout, tick=resume_if_dropped)
    for p in pubs:
        if p.conn is not None:
            await p.conn.disconnect()
    await sub.disconnect()
    cleaner = await _reconnect(target, sub_id, clean=True, expiry=0)  # clean start 1: drop the session
    if cleaner is not None:
        await cleaner.disconnect()
    return LedgerVerdict(done_faults, [_verdict(p, received.get(p.name, [])) for p in pubs], presence,
                         round(time.monotonic() - t_start, 2))


def _verdict(p: _Publisher, got: list[int]) -> StreamVerdict:
    seen: set[int] = set()
    duplicates = reordered = 0
    high = 0
    for seq in got:
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        if seq < high:
            reordered += 1
        high = max(high, seq)
    missing = sorted(set(p.acked) - seen)
    reasons = {f"0x{code:02x}": n for code, n in Counter(p.acked.values()).items()}
    reasons.update({f"0x{code:02x} (retried)": n for code, n in p.failed.items()})
    return StreamVerdict(p.name, p.qos, p.next_seq, len(p.acked), len(seen), missing, duplicates, reordered, reasons)
