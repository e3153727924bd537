"""The embedded history store: DuckDB, owned by the services process, queried through its HTTP API.

Batches go in as DuckDB lists (``unnest``) and answers come out as Parquet written by DuckDB itself, so the
services process needs no pyarrow (43 MiB resident) and the idle stack stays small.

Chosen by measurement (1M rows, this machine): DuckDB aggregates a field over 1M rows in ~20-60 ms and
finds one device's last 1,000 messages in ~2 ms, ingesting ~1.3M rows/s from Arrow batches; SQLite
(WAL) needs ~300-800 ms for the same aggregate. DuckDB admits one writing process, so the services
process owns the file and serves queries as Arrow over HTTP; notebooks never open the file themselves.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from pathlib import Path
from typing import Any

import duckdb

from ._record import Record, flatten
from ._topics import filter_sql

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq BIGINT, ts BIGINT, topic VARCHAR, device VARCHAR, payload BLOB, qos UTINYINT, retain BOOLEAN,
    props VARCHAR, client_id VARCHAR);
CREATE TABLE IF NOT EXISTS fields (
    seq BIGINT, ts BIGINT, topic VARCHAR, device VARCHAR, field VARCHAR, value DOUBLE);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value BIGINT);
"""
AGGREGATES = {"mean": "avg", "avg": "avg", "min": "min", "max": "max", "sum": "sum", "count": "count",
              "median": "median", "first": "arg_min", "last": "arg_max"}
class DuckDBStore:
    """Append-only message and field tables; one writer, any number of reading threads."""

    kind = "duckdb"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # one worker thread and a bounded buffer pool: the lab's services share a small machine
        self._db = duckdb.connect(str(path), config={"threads": 1, "memory_limit": "256MB"})
        self._db.execute(_SCHEMA)
        row = self._db.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()
        self._seq = itertools.count(int(row[0]) + 1 if row else 1)
        self.stored_upto = int(row[0]) if row else 0
        done = self._db.execute("SELECT value FROM meta WHERE key = 'indexed_upto'").fetchone()
        self.indexed_upto = int(done[0]) if done else 0
        self._indexed = threading.Condition()
        self._local = threading.local()
        self._write_lock = threading.Lock()

    def _reader(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._db.cursor()
            self._local.cur = cur
        return cur

    def take_seq(self) -> int:
        """The next record number (thread-safe: the recorder and imports both take them)."""
        return next(self._seq)

    # ------------------------------------------------------------------ writing
    _INSERT_MESSAGES = ("INSERT INTO messages SELECT unnest($1::BIGINT[]), unnest($2::BIGINT[]), unnest($3::VARCHAR[]), "
                        "unnest($4::VARCHAR[]), unnest($5::BLOB[]), unnest($6::UTINYINT[]), unnest($7::BOOLEAN[]), "
                        "unnest($8::VARCHAR[]), unnest($9::VARCHAR[])")
    _INSERT_FIELDS = ("INSERT INTO fields SELECT unnest($1::BIGINT[]), unnest($2::BIGINT[]), unnest($3::VARCHAR[]), "
                      "unnest($4::VARCHAR[]), unnest($5::VARCHAR[]), unnest($6::DOUBLE[])")

    def append(self, records: list[Record]) -> None:
        """Store the raw messages of a batch in one transaction (what acknowledgements wait for)."""
        if not records:
            return
        messages = [[r.seq for r in records], [r.ts_ns for r in records], [r.topic for r in records],
                    [r.device for r in records], [r.payload for r in records], [r.qos for r in records],
                    [r.retain for r in records], [r.props for r in records], [r.client_id for r in records]]
        with self._write_lock:
            cur = self._db.cursor()
            try:
                cur.execute(self._INSERT_MESSAGES, messages)
            finally:
                cur.close()
            self.stored_upto = max(self.stored_upto, records[-1].seq)

    def index(self, records: list[Record]) -> None:
        """Flatten the batch's JSON payloads into ``fields`` and move the index mark, in one transaction.

        Runs behind ``append`` (the recorder's indexer thread), so flattening never slows acknowledgements;
        series queries wait for it to catch up.
        """
        if not records:
            return
        rows = [(r.seq, r.ts_ns, r.topic, r.device, name, value) for r in records for name, value in flatten(r.payload)]
        upto = records[-1].seq
        with self._write_lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                if rows:
                    cur.execute(self._INSERT_FIELDS, [list(column) for column in zip(*rows, strict=True)])
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('indexed_upto', ?)", [upto])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
        with self._indexed:
            self.indexed_upto = max(self.indexed_upto, upto)
            self._indexed.notify_all()

    def unindexed(self, limit: int = 5000) -> list[Record]:
        """Stored messages the index has not seen (after a crash between append and index)."""
        rows = self._reader().execute(
            "SELECT seq, ts, topic, payload, qos, retain, props FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
            [self.indexed_upto, limit]).fetchall()
        return [Record(seq, ts, topic, bytes(payload), qos, retain, props) for seq, ts, topic, payload, qos, retain, props
                in rows]

    def wait_indexed(self, timeout: float) -> bool:
        """Wait until everything stored so far is indexed (read-your-writes for series queries)."""
        target = self.stored_upto
        with self._indexed:
            return self._indexed.wait_for(lambda: self.indexed_upto >= target, timeout)

    def import_parquet(self, data: bytes) -> int:
        """Append an export (Parquet with at least ts, topic, payload) under new sequence numbers."""
        path = self._tmp()
        try:
            path.write_bytes(data)
            rows = self._reader().execute(
                "SELECT ts, topic, payload, coalesce(qos, 0), coalesce(retain, false), props "
                f"FROM read_parquet('{path}')").fetchall()
        finally:
            path.unlink(missing_ok=True)
        records = [Record(self.take_seq(), int(ts), str(topic), bytes(payload or b""), int(qos), bool(retain), props)
                   for ts, topic, payload, qos, retain, props in rows]
        for i in range(0, len(records), 50_000):
            self.append(records[i:i + 50_000])
            self.index(records[i:i + 50_000])
        return len(records)

    def _tmp(self) -> Path:
        directory = self.path.parent / "tmp"
        directory.mkdir(exist_ok=True)
        return directory / f"{uuid.uuid4().hex}.parquet"

    def _parquet(self, sql: str, args: list[Any]) -> bytes:
        """Run a query into Parquet (DuckDB writes it; the client reads it with pyarrow)."""
        path = self._tmp()
        try:
            self._reader().execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)", args)
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)

    def purge(self, before_ns: int) -> int:
        """Delete what is older than ``before_ns`` (retention)."""
        with self._write_lock:
            cur = self._db.cursor()
            try:
                row = cur.execute("SELECT count(*) FROM messages WHERE ts < ?", [before_ns]).fetchone()
                cur.execute("DELETE FROM messages WHERE ts < ?", [before_ns])
                cur.execute("DELETE FROM fields WHERE ts < ?", [before_ns])
            finally:
                cur.close()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _where(topic: str | None, device: str | None, start: int | None, stop: int | None,
               field: str | None = None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if topic:
            condition, values = filter_sql(topic)
            clauses.append(condition)
            args += values
        if device:
            clauses.append("device = ?")
            args.append(device)
        if start is not None:
            clauses.append("ts >= ?")
            args.append(start)
        if stop is not None:
            clauses.append("ts < ?")
            args.append(stop)
        if field is not None:
            clauses.append("field = ?")
            args.append(field)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def messages(self, *, topic: str | None = None, device: str | None = None, start: int | None = None,
                 stop: int | None = None, limit: int | None = None, newest_first: bool = False) -> bytes:
        where, args = self._where(topic, device, start, stop)
        sql = f"SELECT * FROM messages{where} ORDER BY seq {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if newest_first:  # the newest N, handed back in recorded order
            sql = f"SELECT * FROM ({sql}) ORDER BY seq ASC"
        return self._parquet(sql, args)

    def series(self, field: str, *, topic: str | None = None, device: str | None = None, start: int | None = None,
               stop: int | None = None, every_s: float | None = None, agg: str = "mean") -> bytes:
        where, args = self._where(topic, device, start, stop, field)
        if every_s is None:
            return self._parquet(f"SELECT ts, device, topic, value FROM fields{where} ORDER BY seq", args)
        fn = AGGREGATES[agg]
        value = f"{fn}(value, ts)" if fn in ("arg_min", "arg_max") else f"{fn}(value)"
        width = max(1, int(every_s * 1_000_000_000))
        return self._parquet(f"SELECT (ts // {width}) * {width} AS ts, device, {value} AS value, count(*) AS n "
                             f"FROM fields{where} GROUP BY ALL ORDER BY ts, device", args)

    def topics(self) -> bytes:
        return self._parquet("SELECT topic, count(*) AS messages, min(ts) AS first_seen, max(ts) AS last_seen, "
                             "any_value(device) AS device FROM messages GROUP BY topic ORDER BY topic", [])

    def stats(self) -> dict[str, Any]:
        row = self._reader().execute("SELECT count(*), min(ts), max(ts), count(DISTINCT topic) FROM messages").fetchone()
        frow = self._reader().execute("SELECT count(*), count(DISTINCT field) FROM fields").fetchone()
        assert row is not None and frow is not None
        return {"store": self.kind, "path": str(self.path), "messages": row[0], "first_ts": row[1], "last_ts": row[2],
                "topics": row[3], "field_values": frow[0], "fields": frow[1],
                "index_lag": max(0, self.stored_upto - self.indexed_upto),
                "bytes": self.path.stat().st_size if self.path.exists() else 0}

    def close(self) -> None:
        self._db.close()
