"""The recorder: a persistent session on everything, batched writes, acknowledgements after the write.

Because a message is acknowledged only once its batch is stored, the broker keeps (and redelivers after a
restart) whatever the recorder has not stored: a SIGTERM, a crash or a slow store lose nothing that was
accepted. If the recorder falls behind, the broker queues for it (up to ``max_queued_messages``) rather than
dropping. Stamped traffic (a ``seq`` field per publisher) is also checked for gaps, so what went missing
before it reached the recorder is counted exactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..aio import _wire as w
from ..aio._conn import ConnectOptions, ConnectRefused, MqttConnection
from ..aio._loop import LoopThread
from ..fleet._stats import SeqTracker
from ._record import Record, device_of

log = logging.getLogger("mqttlab.services.recorder")
DEFAULT_FILTERS = ("#", "$aws/#")
_SEQ = re.compile(rb'"seq"\s*:\s*(\d+)')


class Store(Protocol):
    def take_seq(self) -> int: ...

    def append(self, records: list[Record]) -> None: ...

    def index(self, records: list[Record]) -> None: ...

    def unindexed(self, limit: int = 5000) -> list[Record]: ...


@dataclass
class RecorderStats:
    received: int = 0
    written: int = 0
    batches: int = 0
    write_errors: int = 0
    redelivered: int = 0
    reconnects: int = 0
    last_write_ms: float = 0.0
    seq_gaps: SeqTracker = field(default_factory=lambda: SeqTracker(restart_on_zero=True))

    def as_dict(self, pending: int) -> dict[str, Any]:
        seq = self.seq_gaps.finish()
        return {"received": self.received, "written": self.written, "pending": pending, "batches": self.batches,
                "write_errors": self.write_errors, "redelivered": self.redelivered, "reconnects": self.reconnects,
                "last_write_ms": round(self.last_write_ms, 3),
                "stamped": {"publishers": seq["publishers"], "missing": seq["lost"], "duplicates": seq["duplicates"],
                            "reordered": seq["reordered"]}}


def _props_json(props: dict[str, Any]) -> str | None:
    if not props:
        return None
    return json.dumps({k: (v.hex() if isinstance(v, bytes) else v) for k, v in props.items()}, separators=(",", ":"))


class Recorder:
    """Runs on its own loop thread (network) plus a writer thread (store)."""

    def __init__(self, store: Store, opts: ConnectOptions, filters: tuple[str, ...] = DEFAULT_FILTERS, *,
                 batch_size: int = 2000, batch_interval: float = 0.025,
                 on_batch: Callable[[list[Record]], None] | None = None) -> None:
        self.store, self.opts, self.filters = store, opts, filters
        self.batch_size, self.batch_interval = batch_size, batch_interval
        self.on_batch = on_batch
        self.stats = RecorderStats()
        self.connected = threading.Event()
        self._pending: list[tuple[Record, int]] = []  # (record, packet id); the qos is the record's
        self._generation = 0
        self._conn: MqttConnection | None = None
        self._writes: queue.Queue[tuple[int, list[tuple[Record, int]]] | None] = queue.Queue()
        self._loop_thread: LoopThread | None = None
        self._writer = threading.Thread(target=self._write_loop, name="recorder-writer", daemon=True)
        self._to_index: queue.Queue[list[Record] | None] = queue.Queue()
        self._indexer = threading.Thread(target=self._index_loop, name="recorder-indexer", daemon=True)
        self._stopping = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._drained: asyncio.Event | None = None
        self._last_ts = 0
        self.recording = True

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._indexer.start()
        self._writer.start()
        self._loop_thread = LoopThread("recorder")
        self._loop_thread.submit(self._run())

    def stop(self) -> None:
        """Stop taking messages, store and acknowledge what was received, then disconnect."""
        self._stopping = True
        if self._loop_thread is not None:
            try:
                self._loop_thread.run(self._shutdown(), timeout=30)
            except Exception:  # shutting down regardless; unacked messages stay queued at the broker
                log.exception("recorder shutdown")
            self._loop_thread.stop()
        self._writes.put(None)
        self._writer.join(timeout=30)
        self._to_index.put(None)
        self._indexer.join(timeout=30)

    async def _shutdown(self) -> None:
        conn = self._conn
        if conn is not None and conn.transport is not None:
            conn.transport.pause_reading()
        self._flush()
        done = asyncio.Event()
        self._drained = done  # set before the marker is queued: the writer may reach it at once
        self._writes.put((-1, []))  # a marker: everything queued before it has been written once it is seen
        try:
            await asyncio.wait_for(done.wait(), 20)
        except asyncio.TimeoutError:
            log.warning("recorder: the store did not finish within 20 s; the broker keeps the rest")
        if conn is not None:
            await conn.disconnect()

    async def _run(self) -> None:
        backoff = 0.05
        while not self._stopping:
            conn = MqttConnection(self.opts, on_message=self._on_message, auto_ack=False)
            try:
                await conn.connect()
                # QoS 2: messages arrive at the QoS they were published with; retain-as-published (0x08)
                # keeps their retain flag; retain handling 1 (0x10): retained messages only for a new
                # subscription, so a resumed session does not record them again
                if self.recording:
                    await conn.subscribe([(f, 2) for f in self.filters], options=0x18)
            except (OSError, asyncio.TimeoutError, ConnectRefused, w.ProtocolError) as exc:
                log.info("recorder not connected yet: %r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self._generation += 1
            if self._conn is not None:
                self.stats.reconnects += 1
            self._conn = conn
            self.connected.set()
            await asyncio.shield(conn.closed)
            self.connected.clear()
            self._flush()  # what was received is still written; its acks cannot be sent any more

    # ------------------------------------------------------------------ receiving (loop thread)
    def _on_message(self, conn: MqttConnection, pkt: w.Packet) -> None:
        st = self.stats
        st.received += 1
        if pkt.flags & 0x08:
            st.redelivered += 1
        now = max(time.time_ns(), self._last_ts + 1)  # strictly increasing: no two messages share a time point
        self._last_ts = now
        record = Record(self.store.take_seq(), now, pkt.topic, pkt.payload, pkt.qos, pkt.retain,
                        _props_json(pkt.properties))
        self._pending.append((record, pkt.packet_id if pkt.qos else 0))
        if len(self._pending) >= self.batch_size:
            self._flush()
        elif self._flush_handle is None and self._loop_thread is not None:
            self._flush_handle = self._loop_thread.loop.call_later(self.batch_interval, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pending:
            batch, self._pending = self._pending, []
            self._writes.put((self._generation, batch))

    def _ack(self, generation: int, acks: list[tuple[int, int]]) -> None:
        conn = self._conn
        if conn is not None and generation == self._generation and not conn.closed.done():
            conn.ack(acks)

    # ------------------------------------------------------------------ writing (writer thread)
    def _write_loop(self) -> None:
        while True:
            item = self._writes.get()
            if item is None:
                return
            generation, batch = item
            if generation == -1:
                if self._loop_thread is not None and self._drained is not None:
                    self._loop_thread.call(self._drained.set)
                continue
            records = [r for r, _ in batch]
            t0 = time.perf_counter()
            try:
                self.store.append(records)
            except Exception:  # not stored, so not acknowledged: the broker redelivers after a reconnect
                self.stats.write_errors += 1
                log.exception("recorder: writing %d messages failed", len(records))
                continue
            st = self.stats
            st.last_write_ms = (time.perf_counter() - t0) * 1000
            st.written += len(records)
            st.batches += 1
            if self._loop_thread is not None:
                self._loop_thread.call(self._ack, generation, [(pid, r.qos) for r, pid in batch if pid])
            self._to_index.put(records)
            if self.on_batch is not None:
                self.on_batch(records)

    def _index_loop(self) -> None:
        """Flatten JSON fields behind the writer; first whatever a crash left unindexed.

        The index is derived data: while the writer has batches waiting, the indexer stands back so
        the CPU goes to storing and acknowledging (on a small machine they compete for it).
        """
        try:
            while True:
                backlog = self.store.unindexed()
                if not backlog:
                    break
                self.store.index(backlog)
        except Exception:  # indexing is derived data: never a reason to stop recording
            log.exception("recorder: catching up the field index failed")
        idle = threading.Event()
        while True:
            records = self._to_index.get()
            if records is None:
                return
            while self._writes.qsize() > 0 and not self._stopping:
                idle.wait(0.005)  # the writer is busy: let it have the CPU first
            while not self._to_index.empty() and len(records) < 20_000:  # index what piled up, in steps
                more = self._to_index.get_nowait()
                if more is None:
                    self._to_index.put(None)
                    break
                records = records + more
            try:
                self.store.index(records)
            except Exception:
                log.exception("recorder: indexing %d messages failed", len(records))
            self._check_stamps(records)

    def _check_stamps(self, records: list[Record]) -> None:
        """Per-publisher sequence check of stamped payloads (a regex: no second JSON parse per message)."""
        tracker = self.stats.seq_gaps
        for r in records:
            m = _SEQ.search(r.payload, 0, 400)
            if m is not None:
                tracker.observe(device_of(r.topic) or r.topic, int(m.group(1)))

    # ------------------------------------------------------------------ pause / resume
    def set_recording(self, on: bool) -> None:
        """Pause (unsubscribe) or resume recording; what is published while paused is not recorded."""
        self.recording = on
        conn, loop = self._conn, self._loop_thread
        if conn is None or loop is None:
            return
        if on:
            loop.submit(conn.subscribe([(f, 2) for f in self.filters], options=0x18)).result(10)
        else:
            loop.submit(conn.unsubscribe(list(self.filters))).result(10)

    def pending(self) -> int:
        return len(self._pending) + self._writes.qsize()
