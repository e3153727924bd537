"""Settings of the services process, read from a JSON file written by the backend (never argv: it holds secrets)."""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    rules_enabled: bool = True  # off in compose: EMQX runs the rules there
    history: str = "duckdb"  # duckdb (local) | influxdb (compose) | off
    history_retention_s: float = 86_400.0
    influx_url: str | None = None
    influx_token: str | None = None
    influx_org: str | None = None
    influx_bucket: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServicesConfig:
        """Settings for the services container (compose backend), from ``MQTTLAB_*`` variables."""
        def need(name: str) -> str:
            value = env.get(name)
            if not value:
                raise SystemExit(f"error: {name} is not set (the compose file passes it from .env)")
            return value

        return cls(
            state_dir=env.get("MQTTLAB_STATE_DIR", "/data"),
            broker_host=env.get("MQTTLAB_BROKER_HOST", "emqx"),
            broker_port=int(env.get("MQTTLAB_BROKER_PORT", "1883")),
            broker_user=need("MQTTLAB_ADMIN_USER"),
            broker_password=need("MQTTLAB_ADMIN_PASSWORD"),
            api_host=env.get("MQTTLAB_API_HOST", "0.0.0.0"),  # inside the container; the compose file maps it
            api_port=int(env.get("MQTTLAB_API_PORT", "8080")),
            api_key=need("MQTTLAB_API_KEY"),
            api_secret=need("MQTTLAB_API_SECRET"),
            lab_id=env.get("MQTTLAB_LAB_ID", "compose"),
            backend="compose",
            log_file=env.get("MQTTLAB_LOG_FILE") or None,
            rules_enabled=env.get("MQTTLAB_RULES", "on").lower() not in ("off", "0", "false"),
            history=env.get("MQTTLAB_HISTORY", "influxdb"),
            history_retention_s=float(env.get("MQTTLAB_HISTORY_RETENTION_S", "86400")),
            influx_url=env.get("INFLUXDB_URL"), influx_token=env.get("INFLUXDB_TOKEN"),
            influx_org=env.get("INFLUXDB_ORG"), influx_bucket=env.get("INFLUXDB_BUCKET"),
        )
    @classmethod
    def load(cls, path: Path) -> ServicesConfig:
        data: dict[str, Any] = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
