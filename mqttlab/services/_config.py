"""Settings of the services process, read from a JSON file written by the backend (never argv: it holds secrets)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServicesConfig:
    state_dir: str
    broker_host: str
    broker_port: int
    broker_user: str
    broker_password: str
    api_host: str
    api_port: int
    api_key: str
    api_secret: str
    lab_id: str
    backend: str = "local"
    log_file: str | None = None

    @classmethod
    def load(cls, path: Path) -> ServicesConfig:
        data: dict[str, Any] = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
