"""Durable shadow storage: current documents and their full version history, in SQLite (WAL)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ._document import Shadow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadows (
    thing TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (thing, name));
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, thing TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    ts INTEGER NOT NULL, op TEXT NOT NULL, client_token TEXT, state TEXT, metadata TEXT);
CREATE INDEX IF NOT EXISTS history_by_shadow ON history (thing, name, id);
"""


class ShadowStore:
    """One writer connection (the twin worker) plus per-thread reader connections for queries.

    ``synchronous=NORMAL`` in WAL mode survives the death of the process (``kill -9``) without losing
    a committed transaction; only a power cut can lose the last ones.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._open()
        self._writer.executescript(_SCHEMA)
        self._local = threading.local()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def load(self, thing: str, name: str) -> Shadow | None:
        row = self._writer.execute("SELECT doc FROM shadows WHERE thing=? AND name=?", (thing, name)).fetchone()
        return Shadow.from_json(row[0]) if row else None

    def write_batch(self, changes: list[tuple[str, str, Shadow, str, str | None]]) -> None:
        """Persist (thing, name, shadow, op, client_token) changes in one transaction."""
        if not changes:
            return
        cur = self._writer
        cur.execute("BEGIN IMMEDIATE")
        try:
            for thing, name, shadow, op, token in changes:
                cur.execute("INSERT INTO shadows (thing, name, doc) VALUES (?, ?, ?) "
                            "ON CONFLICT (thing, name) DO UPDATE SET doc=excluded.doc", (thing, name, shadow.to_json()))
                cur.execute("INSERT INTO history (thing, name, version, ts, op, client_token, state, metadata) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (thing, name, shadow.version, shadow.timestamp if op == "update" else shadow.deleted_at,
                             op, token, json.dumps(shadow.state), json.dumps(shadow.metadata)))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def list_shadows(self, thing: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT thing, name, doc FROM shadows"
        args: tuple[str, ...] = ()
        if thing is not None:
            sql += " WHERE thing=?"
            args = (thing,)
        out = []
        for t, n, doc in self._reader().execute(sql + " ORDER BY thing, name", args):
            shadow = Shadow.from_json(doc)
            if shadow.exists:
                out.append({"thing": t, "shadow": n or None, "version": shadow.version, "timestamp": shadow.timestamp})
        return out

    def history(self, thing: str, name: str) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT version, ts, op, client_token, state, metadata FROM history WHERE thing=? AND name=? ORDER BY id",
            (thing, name))
        return [{"version": v, "timestamp": ts, "op": op, "clientToken": tok, "state": json.loads(st),
                 "metadata": json.loads(md)} for v, ts, op, tok, st, md in rows]

    def close(self) -> None:
        self._writer.close()
