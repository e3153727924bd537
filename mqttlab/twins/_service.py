"""The twin service: AWS shadow topics on the broker, and the same operations for the HTTP API.

Requests from MQTT and HTTP go through one worker thread that takes them in batches: each batch is
committed to SQLite in one transaction *before* any answer is published, so an accepted update is
never lost (group commit), and updates to one shadow are applied strictly in arrival order.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ._document import (
    Shadow,
    ShadowError,
    apply_update,
    full_document,
    not_found,
    parse_token_only,
    parse_update,
)
from ._store import ShadowStore

log = logging.getLogger("mqttlab.services.twins")
_NAME = re.compile(r"^[A-Za-z0-9_:\-]{1,128}$")
_SHADOW_NAME = re.compile(r"^[A-Za-z0-9_:\-]{1,64}$")
OPS = ("get", "update", "delete")
FILTERS = ("$aws/things/+/shadow/+", "$aws/things/+/shadow/name/+/+")
Publish = Callable[[str, bytes], None]


def shadow_prefix(thing: str, name: str | None) -> str:
    return f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")


def parse_topic(topic: str) -> tuple[str, str | None, str] | None:
    """(thing, shadow name or None, op) of a request topic; None for anything else."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[:2] == ["$aws", "things"] and parts[3] == "shadow" and parts[4] in OPS:
        return parts[2], None, parts[4]
    if len(parts) == 7 and parts[:2] == ["$aws", "things"] and parts[3:5] == ["shadow", "name"] and parts[6] in OPS:
        return parts[2], parts[5], parts[6]
    return None


@dataclass
class _Request:
    thing: str
    name: str | None
    op: str
    payload: bytes
    reply_mqtt: bool
    future: Future[tuple[int, dict[str, Any]]] | None


class TwinService:
    """Owns the shadows of one lab. ``publish`` sends a message on the broker (QoS 1)."""

    def __init__(self, store: ShadowStore, publish: Publish, *, batch: int = 512) -> None:
        self.store = store
        self._publish = publish
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._cache: dict[tuple[str, str], Shadow | None] = {}
        self._batch = batch
        self._thread = threading.Thread(target=self._run, name="twins", daemon=True)
        self.counters = {"requests": 0, "accepted": 0, "rejected": 0, "errors": 0}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish what was queued (answers included), then stop."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    # --------------------------------------------------------------- entry points
    def on_mqtt(self, topic: str, payload: bytes) -> None:
        parsed = parse_topic(topic)
        if parsed is None:
            return
        thing, name, op = parsed
        self._queue.put(_Request(thing, name, op, payload, True, None))

    def submit(self, thing: str, name: str | None, op: str, payload: bytes = b"") -> Future[tuple[int, dict[str, Any]]]:
        """Run an operation for the HTTP API; resolves to (status code, document)."""
        fut: Future[tuple[int, dict[str, Any]]] = Future()
        self._queue.put(_Request(thing, name, op, payload, False, fut))
        return fut

    # --------------------------------------------------------------- the worker
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[_Request] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < self._batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            if batch:
                try:
                    self._process(batch)
                except Exception:  # never let one bad batch kill the twin service
                    log.exception("twin batch failed")
                    self.counters["errors"] += len(batch)
                    for req in batch:
                        if req.future is not None and not req.future.done():
                            req.future.set_result((500, {"code": 500, "message": "Internal service failure"}))

    def _shadow(self, key: tuple[str, str]) -> Shadow | None:
        if key not in self._cache:
            self._cache[key] = self.store.load(*key)
        return self._cache[key]

    def _process(self, batch: list[_Request]) -> None:
        now = int(time.time())
        changes: list[tuple[str, str, Shadow, str, str | None]] = []
        answers: list[tuple[_Request, int, dict[str, Any], list[tuple[str, dict[str, Any]]]]] = []
        staged: dict[tuple[str, str], Shadow | None] = {}
        for req in batch:
            self.counters["requests"] += 1
            key = (req.thing, req.name or "")
            current = staged[key] if key in staged else self._shadow(key)
            token: str | None = None
            try:
                if not _NAME.match(req.thing) or (req.name is not None and not _SHADOW_NAME.match(req.name)):
                    raise ShadowError(400, "Invalid thing name" if not _NAME.match(req.thing) else "Invalid shadow name")
                if req.op == "update":
                    update = parse_update(req.payload)
                    result = apply_update(current, update, now)
                    staged[key] = result.shadow
                    changes.append((req.thing, req.name or "", result.shadow, "update", update.client_token))
                    extra = [("update/documents", result.documents)]
                    if result.delta is not None:
                        extra.insert(0, ("update/delta", result.delta))
                    answers.append((req, 200, result.accepted, extra))
                    continue
                token = parse_token_only(req.payload)
                if current is None or not current.exists:
                    raise not_found(req.thing, req.name, token)
                if req.op == "get":
                    answers.append((req, 200, full_document(current, now, token), []))
                else:
                    deleted = Shadow({}, {}, current.version, current.timestamp, deleted_at=now)
                    staged[key] = deleted
                    changes.append((req.thing, req.name or "", deleted, "delete", token))
                    body: dict[str, Any] = {"version": current.version, "timestamp": now}
                    if token is not None:
                        body["clientToken"] = token
                    answers.append((req, 200, body, []))
            except ShadowError as err:
                answers.append((req, err.code, err.document(now), []))
        self.store.write_batch(changes)  # durable before anyone hears "accepted"
        self._cache.update(staged)
        for req, code, doc, extra in answers:
            self.counters["accepted" if code == 200 else "rejected"] += 1
            if req.future is not None:
                req.future.set_result((code, doc))
            prefix = shadow_prefix(req.thing, req.name)
            # HTTP updates and deletes are announced on MQTT too, as AWS does; HTTP gets are not
            if req.reply_mqtt or (code == 200 and req.op != "get"):
                outcome = "accepted" if code == 200 else "rejected"
                self._publish(f"{prefix}/{req.op}/{outcome}", _dumps(doc))
            for suffix, extra_doc in extra:
                self._publish(f"{prefix}/{suffix}", _dumps(extra_doc))


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
