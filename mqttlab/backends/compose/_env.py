"""The compose stack's ``.env``: read it, or write one with random secrets from ``.env.example``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRETS = ("MQTTLAB_ADMIN_PASSWORD", "MQTTLAB_API_SECRET", "EMQX_DASHBOARD_PASSWORD", "INFLUXDB_ADMIN_PASSWORD",
           "INFLUXDB_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD")


def read_env(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def ensure_env(compose_dir: Path) -> Path:
    """``compose/.env``; created from ``.env.example`` with random secrets when absent (mode 0600)."""
    env_file = compose_dir / ".env"
    if env_file.exists():
        return env_file
    lines = []
    for line in (compose_dir / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in SECRETS and not value.strip():
            # token_urlsafe has no spaces, commas, '#' or quotes: safe in .env, HOCON and EMQX's bootstrap files
            line = f"{key}={secrets.token_urlsafe(24)}"
        lines.append(line)
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return env_file
