"""The AWS IoT Device Shadow document algebra: validation, merge, delta, metadata, versions.

Pure functions, no I/O. Semantics follow the AWS developer guide and the Greengrass Shadow
Manager (delta = desired values that differ from reported; reported-only keys never appear).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_STATE_BYTES = 8 * 1024  # desired + reported of the resulting document; metadata does not count
MAX_DEPTH = 6
MAX_CLIENT_TOKEN_BYTES = 64
RECREATE_WINDOW_S = 48 * 3600  # a shadow recreated within 48 h continues its version count
SECTIONS = ("desired", "reported")


class ShadowError(Exception):
    """A rejection, answered as ``{"code", "message", "timestamp", "clientToken"?}``."""

    def __init__(self, code: int, message: str, client_token: str | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message, self.client_token = code, message, client_token

    def document(self, now: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"code": self.code, "message": self.message, "timestamp": now}
        if self.client_token is not None:
            doc["clientToken"] = self.client_token
        return doc


@dataclass
class Shadow:
    """A stored shadow. ``deleted_at`` is set while the shadow is deleted (its version is kept)."""

    state: dict[str, Any] = field(default_factory=dict)  # {"desired": {...}, "reported": {...}}
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    timestamp: int = 0
    deleted_at: int | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0 and self.deleted_at is None

    def to_json(self) -> str:
        return json.dumps({"state": self.state, "metadata": self.metadata, "version": self.version,
                           "timestamp": self.timestamp, "deleted_at": self.deleted_at}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Shadow:
        d = json.loads(text)
        return cls(d["state"], d["metadata"], d["version"], d["timestamp"], d.get("deleted_at"))


@dataclass(frozen=True)
class UpdateRequest:
    state: dict[str, Any]  # only "desired" and/or "reported"; values are objects or None
    client_token: str | None
    version: int | None


@dataclass(frozen=True)
class UpdateResult:
    shadow: Shadow
    accepted: dict[str, Any]
    delta: dict[str, Any] | None
    documents: dict[str, Any]


# ------------------------------------------------------------------ parsing and validation

def _decode(payload: bytes) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ShadowError(415, "Unsupported documented encoding; supported encoding is UTF-8") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ShadowError(400, "Invalid JSON") from None


def _client_token(doc: dict[str, Any]) -> str | None:
    token = doc.get("clientToken")
    if token is None:
        return None
    if not isinstance(token, str) or len(token.encode()) > MAX_CLIENT_TOKEN_BYTES:
        raise ShadowError(400, "Invalid clientToken")
    return token


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_depth(v) for v in value), default=0)
    return 0


def _has_null_in_array(value: Any, in_array: bool = False) -> bool:
    if value is None:
        return in_array
    if isinstance(value, dict):
        return any(_has_null_in_array(v, False) for v in value.values())
    if isinstance(value, list):
        return any(_has_null_in_array(v, True) for v in value)
    return False


def parse_update(payload: bytes) -> UpdateRequest:
    """Validate an update request; raises :class:`ShadowError` with AWS's code and message."""
    doc = _decode(payload)
    if not isinstance(doc, dict):
        raise ShadowError(400, "Invalid JSON")
    token = doc.get("clientToken") if isinstance(doc.get("clientToken"), str) else None
    try:
        token = _client_token(doc)
        version = doc.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
            raise ShadowError(400, "Invalid version")
        if "state" not in doc:
            raise ShadowError(400, "Missing required node: state")
        state = doc["state"]
        if not isinstance(state, dict):
            raise ShadowError(400, "State node must be an object")
        for key in state:
            if key not in SECTIONS:  # includes "delta", which a client may not write
                raise ShadowError(400, "State contains an invalid node")
        for section in SECTIONS:
            if section in state and state[section] is not None and not isinstance(state[section], dict):
                raise ShadowError(400, f"{section.capitalize()} node must be an object")
            if _depth(state.get(section)) > MAX_DEPTH:
                raise ShadowError(400, "JSON contains too many levels of nesting; maximum is 6")
            if _has_null_in_array(state.get(section)):
                raise ShadowError(400, "State contains an invalid node")
        if len(json.dumps(state, separators=(",", ":")).encode()) > MAX_STATE_BYTES:
            raise ShadowError(413, "The payload exceeds the maximum size allowed")
    except ShadowError as err:
        err.client_token = token if err.message != "Invalid clientToken" else None
        raise
    return UpdateRequest(state=state, client_token=token, version=version)


def parse_token_only(payload: bytes) -> str | None:
    """clientToken of a get/delete request (their payload is otherwise ignored)."""
    if not payload.strip():
        return None
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return _client_token(doc) if isinstance(doc, dict) else None


# ------------------------------------------------------------------ algebra

def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: ``true`` is not ``1``, ``1`` equals ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def leaf_metadata(value: Any, now: int) -> Any:
    """Metadata mirroring ``value``: each leaf (and each array element) becomes ``{"timestamp": now}``."""
    if isinstance(value, dict):
        return {k: leaf_metadata(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [leaf_metadata(v, now) for v in value]
    return {"timestamp": now}


def _merge(target: dict[str, Any], meta: dict[str, Any], patch: dict[str, Any], now: int) -> None:
    """Merge ``patch`` into ``target`` in place: objects recurse, ``null`` deletes, arrays replace."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
            meta.pop(key, None)
        elif isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key], meta[key] = {}, {}
            elif not isinstance(meta.get(key), dict):
                meta[key] = {}
            _merge(target[key], meta[key], value, now)
            if not target[key]:  # every key of it was deleted: drop the empty object
                del target[key]
                meta.pop(key, None)
        else:
            target[key] = value
            meta[key] = leaf_metadata(value, now)


def compute_delta(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """Desired values that differ from reported (desired-only keys included, reported-only excluded)."""
    delta: dict[str, Any] = {}
    for key, want in desired.items():
        if key not in reported:
            delta[key] = want
        elif isinstance(want, dict) and isinstance(reported[key], dict):
            sub = compute_delta(want, reported[key])
            if sub:
                delta[key] = sub
        elif not json_equal(want, reported[key]):
            delta[key] = want
    return delta


def _project(meta: Any, shape: Any) -> Any:
    """The part of ``meta`` at the paths of ``shape`` (delta metadata = desired metadata of delta keys)."""
    if isinstance(shape, dict) and isinstance(meta, dict):
        return {k: _project(meta.get(k), v) for k, v in shape.items()}
    return meta


def _request_metadata(state: dict[str, Any], now: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, value in state.items():
        out[section] = {"timestamp": now} if value is None else _null_aware_metadata(value, now)
    return out


def _null_aware_metadata(value: Any, now: int) -> Any:
    if isinstance(value, dict):
        return {k: ({"timestamp": now} if v is None else _null_aware_metadata(v, now)) for k, v in value.items()}
    return leaf_metadata(value, now)


def _snapshot(shadow: Shadow) -> dict[str, Any]:
    return {"state": {s: shadow.state[s] for s in SECTIONS if s in shadow.state},
            "metadata": {s: shadow.metadata[s] for s in SECTIONS if s in shadow.metadata},
            "version": shadow.version}


def apply_update(current: Shadow | None, req: UpdateRequest, now: int) -> UpdateResult:
    """Apply a validated update. ``now`` is epoch seconds. Raises 409/400/413 :class:`ShadowError`."""
    existed = current is not None and current.exists
    if existed:
        assert current is not None
        if req.version is not None and req.version != current.version:
            raise ShadowError(409, "Version conflict", req.client_token)
        base_version = current.version
        work = Shadow(json.loads(json.dumps(current.state)), json.loads(json.dumps(current.metadata)),
                      current.version, current.timestamp)
    else:
        if req.version is not None:
            raise ShadowError(400, "Invalid version", req.client_token)
        recent = current is not None and current.deleted_at is not None and now - current.deleted_at < RECREATE_WINDOW_S
        base_version = current.version if recent and current is not None else 0
        work = Shadow()
    for section in SECTIONS:
        if section not in req.state:
            continue
        value = req.state[section]
        if value is None:
            work.state.pop(section, None)
            work.metadata.pop(section, None)
            continue
        target = work.state.setdefault(section, {})
        meta = work.metadata.setdefault(section, {})
        _merge(target, meta, value, now)
        if not target:
            work.state.pop(section, None)
            work.metadata.pop(section, None)
    stored = {s: work.state[s] for s in SECTIONS if s in work.state}
    if len(json.dumps(stored, separators=(",", ":")).encode()) > MAX_STATE_BYTES:
        raise ShadowError(413, "The payload exceeds the maximum size allowed", req.client_token)
    work.version, work.timestamp, work.deleted_at = base_version + 1, now, None
    accepted: dict[str, Any] = {"state": req.state, "metadata": _request_metadata(req.state, now),
                                "version": work.version, "timestamp": now}
    delta_doc: dict[str, Any] | None = None
    delta = compute_delta(work.state.get("desired", {}), work.state.get("reported", {}))
    if delta:
        delta_doc = {"state": delta, "metadata": _project(work.metadata.get("desired", {}), delta),
                     "version": work.version, "timestamp": now}
    documents: dict[str, Any] = {"previous": _snapshot(current) if existed and current is not None else None,
                 "current": _snapshot(work), "timestamp": now}
    if req.client_token is not None:
        for doc in (accepted, documents, delta_doc):
            if doc is not None:
                doc["clientToken"] = req.client_token
    return UpdateResult(work, accepted, delta_doc, documents)


def full_document(shadow: Shadow, now: int, client_token: str | None = None) -> dict[str, Any]:
    """The ``get/accepted`` document: state with delta (when non-empty), metadata, version, timestamp."""
    state = {s: shadow.state[s] for s in SECTIONS if s in shadow.state}
    delta = compute_delta(shadow.state.get("desired", {}), shadow.state.get("reported", {}))
    if delta:
        state["delta"] = delta
    doc: dict[str, Any] = {"state": state, "metadata": {s: shadow.metadata[s] for s in SECTIONS if s in shadow.metadata},
                           "version": shadow.version, "timestamp": now}
    if client_token is not None:
        doc["clientToken"] = client_token
    return doc


def not_found(thing: str, shadow_name: str | None, client_token: str | None) -> ShadowError:
    return ShadowError(404, f"No shadow exists with name: {shadow_name or thing}", client_token)
