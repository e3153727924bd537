"""Files the compose stack needs that hold secrets or keys: EMQX users, API keys, TLS material.

Written by ``mqttlab compose init`` (the stack's ``init`` service runs it, so a bare ``docker compose
up`` works with just a ``.env``). The same CA code as the local backend issues the certificates.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...devices._registry import load_seed
from ...errors import ConfigError
from ...pki import CertificateAuthority

EMQX_UID = 1000  # the EMQX image runs as uid 1000: what it reads must be readable by it
REQUIRED = ("MQTTLAB_ADMIN_USER", "MQTTLAB_ADMIN_PASSWORD", "MQTTLAB_API_KEY", "MQTTLAB_API_SECRET")


def _write(path: Path, text: str, mode: int = 0o640) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    if os.geteuid() == 0:  # in the init container: hand the file to EMQX's user
        os.chown(path, EMQX_UID, EMQX_UID)


def users_json(admin_user: str, admin_password: str, devices: list[dict[str, Any]]) -> str:
    """EMQX built-in database bootstrap (plain). JSON rather than CSV: EMQX's CSV reader splits on spaces
    too and knows no quoting, so a password with a space or comma would break the import."""
    users = [{"user_id": admin_user, "password": admin_password, "is_superuser": True}]
    users += [{"user_id": d["id"], "password": d["password"], "is_superuser": False} for d in devices]
    return json.dumps(users, indent=1)


def generate(out: Path, env: Mapping[str, str], devices_seed: Path | None = None) -> list[Path]:
    """Write ``emqx/users.json``, ``emqx/api-keys.txt`` and ``certs/`` under ``out``; returns the files written.

    Device passwords of a seed file without passwords are generated once and kept in
    ``devices.json`` beside them, so re-running init does not change them.
    """
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set", hint="copy compose/.env.example to compose/.env and fill it in")

    out.mkdir(parents=True, exist_ok=True)
    known_path = out / "devices.json"
    known: dict[str, dict[str, Any]] = json.loads(known_path.read_text()) if known_path.exists() else {}
    for entry in load_seed(devices_seed) if devices_seed and devices_seed.is_file() else []:
        if entry["id"] not in known:
            known[entry["id"]] = {"id": entry["id"], "password": entry.get("password") or secrets.token_urlsafe(12),
                                  "auth": entry.get("auth", "password")}
    _write(known_path, json.dumps(known, indent=2), 0o600)
    written = [known_path]
    users = out / "emqx" / "users.json"
    _write(users, users_json(env["MQTTLAB_ADMIN_USER"], env["MQTTLAB_ADMIN_PASSWORD"], list(known.values())))
    keys = out / "emqx" / "api-keys.txt"
    _write(keys, f"{env['MQTTLAB_API_KEY']}:{env['MQTTLAB_API_SECRET']}:administrator\n")
    written += [users, keys]
    certs = out / "certs"
    ca = CertificateAuthority(certs)
    hosts = ["localhost", "127.0.0.1", "emqx", *env.get("MQTTLAB_TLS_HOSTS", socket.gethostname()).split(",")]
    pair = ca.server_cert(certs, [h for h in hosts if h])
    for dev in known.values():
        if dev.get("auth") == "cert":
            ca.client_cert(certs / "devices", dev["id"])
    for path in (ca.cert_path, pair.cert, pair.key):
        os.chmod(path, 0o644 if path.suffix == ".pem" else 0o640)
        if os.geteuid() == 0:
            os.chown(path, EMQX_UID, EMQX_UID)
    written += [ca.cert_path, pair.cert, pair.key]
    return written
