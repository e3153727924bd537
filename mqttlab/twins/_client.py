"""``lab.twins``: read, edit and watch device twins from a notebook or script (through the HTTP API)."""

from __future__ import annotations

import builtins
import json
from typing import TYPE_CHECKING, Any

import httpx

from .._wait import wait_until
from ..errors import ApiError

if TYPE_CHECKING:
    import pandas as pd

_UNSET: Any = object()


class TwinError(ApiError):
    """The twin service rejected a request; ``status`` and ``message`` are AWS's."""


class Twins:
    """Client of the lab's AWS-shadow-compatible twin service."""

    def __init__(self, api_url: str, auth: tuple[str, str], timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=api_url, auth=auth, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, name: str | None = None, body: Any = None) -> Any:
        params = {"name": name} if name else None
        content = json.dumps(body).encode() if body is not None else None
        resp = self._http.request(method, path, params=params, content=content,
                                  headers={"content-type": "application/json"} if content else None)
        data = resp.json()
        if resp.status_code >= 400:
            message = data.get("message", resp.text) if isinstance(data, dict) else resp.text
            hints = {404: "create it with lab.twins.update(thing, desired={...})",
                     409: "get the current version and retry, or omit version=",
                     413: "desired + reported must stay under 8 KB"}
            raise TwinError(f"{method} {path}: {resp.status_code} {message}", status=resp.status_code,
                            code=str(data.get("code")) if isinstance(data, dict) else None,
                            hint=hints.get(resp.status_code, "see the AWS IoT Device Shadow error reference"))
        return data

    def list(self, thing: str | None = None) -> list[dict[str, Any]]:
        """Existing shadows: ``[{"thing", "shadow", "version", "timestamp"}]``."""
        params = {"thing": thing} if thing else None
        result: list[dict[str, Any]] = self._http.get("/api/twins", params=params).raise_for_status().json()
        return result

    def get(self, thing: str, name: str | None = None) -> dict[str, Any]:
        """The full document (``state.desired/reported/delta``, ``metadata``, ``version``, ``timestamp``)."""
        doc: dict[str, Any] = self._call("GET", f"/things/{thing}/shadow", name=name)
        return doc

    def update(self, thing: str, *, desired: Any = _UNSET, reported: Any = _UNSET, name: str | None = None,
               version: int | None = None, client_token: str | None = None) -> dict[str, Any]:
        """Partial update; ``desired=None`` clears the whole section, a ``None`` field deletes that field."""
        state: dict[str, Any] = {}
        if desired is not _UNSET:
            state["desired"] = desired
        if reported is not _UNSET:
            state["reported"] = reported
        body: dict[str, Any] = {"state": state}
        if version is not None:
            body["version"] = version
        if client_token is not None:
            body["clientToken"] = client_token
        doc: dict[str, Any] = self._call("POST", f"/things/{thing}/shadow", name=name, body=body)
        return doc

    def delete(self, thing: str, name: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = self._call("DELETE", f"/things/{thing}/shadow", name=name)
        return doc

    def delta(self, thing: str, name: str | None = None) -> dict[str, Any]:
        """What desired still asks of the device ({} when in sync)."""
        delta: dict[str, Any] = self.get(thing, name)["state"].get("delta", {})
        return delta

    def wait_in_sync(self, thing: str, timeout: float = 10.0, name: str | None = None) -> dict[str, Any]:
        """Wait until reported has caught up with desired (no delta); returns the document."""
        last: dict[str, Any] = {}

        def in_sync() -> dict[str, Any] | None:
            doc = self.get(thing, name)
            last["delta"] = doc["state"].get("delta")
            return doc if not doc["state"].get("delta") else None

        return wait_until(in_sync, timeout=timeout, what=f"shadow {thing} to be in sync",
                          seen=lambda: f"delta still {last.get('delta')}", interval=0.01, max_interval=0.1)

    def history(self, thing: str, name: str | None = None) -> pd.DataFrame:
        """Every accepted version, oldest first: version, time, op, clientToken, desired, reported."""
        import pandas as pd

        rows = self._call("GET", f"/api/twins/{thing}/history", name=name)
        frame = pd.DataFrame([{"version": r["version"], "time": pd.to_datetime(r["timestamp"], unit="s", utc=True),
                               "op": r["op"], "clientToken": r["clientToken"],
                               "desired": r["state"].get("desired"), "reported": r["state"].get("reported")}
                              for r in rows])
        return frame

    def editor(self, thing: str, name: str | None = None) -> Any:
        """An ipywidgets editor: desired / reported / delta side by side, version, Apply and Refresh."""
        from ._widget import twin_editor

        return twin_editor(self, thing, name)

    def diff(self, thing: str, v1: int, v2: int, name: str | None = None) -> builtins.list[dict[str, Any]]:
        """Leaf changes from version ``v1`` to ``v2``: ``[{"path", "old", "new"}]`` (paths like ``desired.mode.a``)."""
        rows = self._call("GET", f"/api/twins/{thing}/history", name=name)
        by_version = {r["version"]: r["state"] for r in rows if r["op"] == "update"}
        missing = [v for v in (v1, v2) if v not in by_version]
        if missing:
            raise TwinError(f"shadow {thing} has no version {missing}", status=404,
                            hint=f"known versions: {sorted(by_version)}")
        return diff_states(by_version[v1], by_version[v2])


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(sub, f"{prefix}.{key}" if prefix else key, out)
    else:
        out[prefix] = value


def diff_states(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Leaf-level differences between two shadow states."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(old, "", a)
    _flatten(new, "", b)
    missing = object()
    changes = []
    for path in sorted(a.keys() | b.keys()):
        before, after = a.get(path, missing), b.get(path, missing)
        if before != after or type(before) is not type(after):
            changes.append({"path": path, "old": None if before is missing else before,
                            "new": None if after is missing else after})
    return changes
