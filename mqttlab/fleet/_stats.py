"""Receiver-side bookkeeping: per-publisher sequence checks (loss, duplicates, reordering) and latency."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any

BINARY_MAGIC = b"MQLB"
_BIN = struct.Struct("!4sQQ")  # magic, seq, send time (ns since epoch)


def binary_stamp(seq: int, size: int, now_ns: int | None = None) -> bytes:
    """A payload of ``size`` bytes (>= 20) carrying seq and send time: the benchmarks' format."""
    head = _BIN.pack(BINARY_MAGIC, seq, now_ns if now_ns is not None else time.time_ns())
    return head + bytes(max(0, size - len(head)))


def read_stamp(payload: bytes, user_props: list[tuple[str, str]] | None = None) -> tuple[int, int] | None:
    """(seq, send time ns) from a binary stamp, a JSON payload's ``seq``/``ts`` or MQTT 5 user properties."""
    if payload[:4] == BINARY_MAGIC and len(payload) >= _BIN.size:
        _, seq, ts = _BIN.unpack_from(payload)
        return seq, ts
    if user_props:
        props = dict(user_props)
        if "seq" in props and "ts" in props:
            try:
                return int(props["seq"]), int(props["ts"])
            except ValueError:
                return None
    if payload[:1] == b"{":
        try:
            doc = json.loads(payload)
            return int(doc["seq"]), int(float(doc["ts"]) * 1e9) if isinstance(doc["ts"], float) else int(doc["ts"])
        except (ValueError, KeyError, TypeError):
            return None
    return None


@dataclass
class SeqState:
    next: int = 0
    missing: set[int] = field(default_factory=set)
    received: int = 0
    duplicates: int = 0
    reordered: int = 0


class SeqTracker:
    """Exact per-publisher accounting, as emqtt-bench's sequence check but with reordering told apart.

    A sequence number above the expected one opens a gap (its numbers are *missing*); a number
    that later fills a gap counts as *reordered*; a number seen before counts as a *duplicate*.
    What is still missing at the end is *lost*.
    """

    def __init__(self, *, restart_on_zero: bool = False) -> None:
        """``restart_on_zero``: a publisher going back to 0 started a new stream (long-lived observers
        such as the recorder see many fleet runs with the same device ids)."""
        self.publishers: dict[str, SeqState] = {}
        self.restart_on_zero = restart_on_zero

    def observe(self, publisher: str, seq: int) -> None:
        st = self.publishers.get(publisher)
        if st is None:
            st = self.publishers[publisher] = SeqState()
        if seq == 0 and st.next > 1 and self.restart_on_zero:
            st.next = 0
            st.missing.clear()
        st.received += 1
        if seq == st.next:
            st.next += 1
        elif seq > st.next:
            if seq - st.next > 1_000_000:  # a restart of the publisher's counter, not a million losses
                st.missing.clear()
            else:
                st.missing.update(range(st.next, seq))
            st.next = seq + 1
        elif seq in st.missing:
            st.missing.discard(seq)
            st.reordered += 1
        else:
            st.duplicates += 1

    def finish(self, sent: dict[str, int] | None = None) -> dict[str, int]:
        """Totals; ``sent`` (publisher -> messages sent) also counts losses at the tail of a stream."""
        lost = sum(len(st.missing) for st in self.publishers.values())
        if sent:
            for pub, count in sent.items():
                st = self.publishers.get(pub)
                lost += max(0, count - (st.next if st else 0))
        return {"received": sum(st.received for st in self.publishers.values()),
                "lost": lost,
                "duplicates": sum(st.duplicates for st in self.publishers.values()),
                "reordered": sum(st.reordered for st in self.publishers.values()),
                "publishers": len(self.publishers)}


class Latencies:
    """Latency samples in microseconds, kept in a growable numpy buffer (cheap to append, exact percentiles)."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        import numpy as np  # only where latencies are measured; the recorder uses the sequence checker alone

        self._np = np
        self._buf = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def add(self, seconds: float) -> None:
        if self.n == len(self._buf):
            self._buf = self._np.resize(self._buf, len(self._buf) * 2)
        self._buf[self.n] = seconds * 1e6
        self.n += 1

    def values_us(self) -> Any:
        return self._buf[: self.n]

    def summary(self) -> dict[str, float | int]:
        v = self.values_us()
        if not len(v):
            return {"count": 0}
        p50, p90, p99, p999 = (float(x) / 1e3 for x in self._np.percentile(v, [50, 90, 99, 99.9]))
        return {"count": len(v), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "p99_9_ms": p999,
                "max_ms": float(v.max()) / 1e3, "mean_ms": float(v.mean()) / 1e3}
