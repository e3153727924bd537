"""Rules as EMQX represents them, persisted as one JSON file (atomic writes) in the services state dir."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="milliseconds")


class RuleStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.rules: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self.rules = {r["id"]: r for r in data.get("rules", [])}
            except (ValueError, KeyError, TypeError):
                corrupt = path.with_suffix(".corrupt")
                os.replace(path, corrupt)  # keep it for inspection; start empty rather than crash

    def save(self) -> None:
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name)
            with os.fdopen(fd, "w") as fh:
                json.dump({"rules": list(self.rules.values())}, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(4)
