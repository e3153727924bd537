"""Reading and writing the JSON files in a lab's state directory, with errors that name the fix."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from .errors import StateDirError

IDENTITY_FILE = "lab.json"
RUN_FILE = "run.json"


def ensure_state_dir(state_dir: Path) -> None:
    """Create the state dir (mode 0700) and prove it is writable."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sub in ("logs", "mosquitto", "tls", "services"):
            (state_dir / sub).mkdir(exist_ok=True, mode=0o700)
        probe = state_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StateDirError(
            f"state directory {state_dir} is not usable: {exc.strerror or exc}",
            hint="pass a writable directory (Lab.local(state_dir=...), `mqttlab up --state-dir ...`) or set MQTTLAB_HOME",
        ) from exc


def read_json(path: Path) -> dict[str, Any] | None:
    """The object in ``path``, ``None`` if absent; a corrupt file is a :class:`StateDirError`."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateDirError(f"cannot read {path}: {exc.strerror or exc}", hint="check the file's permissions") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateDirError(
            f"state file {path} is corrupt (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint=f"if no lab is running from {path.parent}, delete {path} (or run `mqttlab down --force`) and start again",
        ) from exc
    if not isinstance(data, dict):
        raise StateDirError(f"state file {path} does not hold a JSON object", hint=f"delete {path} and start again")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (temp file + rename), mode 0600: these files hold credentials."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dotenv(cwd: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    env_file = cwd / ".env"
    if not env_file.is_file():
        return {}
    return {k: v for k, v in dotenv_values(env_file).items() if v is not None}


def load_identity(state_dir: Path) -> dict[str, Any]:
    """The lab's persistent identity (id and credentials): generated once per state dir.

    Credentials come from ``MQTTLAB_ADMIN_USER``/``MQTTLAB_ADMIN_PASSWORD``/``MQTTLAB_API_KEY``/
    ``MQTTLAB_API_SECRET`` in the environment or a ``.env`` file when set, else they are random.
    """
    path = state_dir / IDENTITY_FILE
    identity = read_json(path)
    if identity is not None:
        missing = {"lab_id", "admin_user", "admin_password", "api_key", "api_secret"} - identity.keys()
        if missing:
            raise StateDirError(
                f"state file {path} lacks {sorted(missing)}", hint=f"delete {path} to generate fresh credentials"
            )
        return identity
    env = {**_dotenv(Path.cwd()), **os.environ}
    identity = {
        "lab_id": uuid.uuid4().hex[:8],
        "admin_user": env.get("MQTTLAB_ADMIN_USER", "mqttlab-admin"),
        "admin_password": env.get("MQTTLAB_ADMIN_PASSWORD") or secrets.token_urlsafe(18),
        "api_key": env.get("MQTTLAB_API_KEY") or "key-" + secrets.token_hex(6),
        "api_secret": env.get("MQTTLAB_API_SECRET") or secrets.token_urlsafe(24),
        "ports": {},
        "created_at": time.time(),
    }
    write_json(path, identity)
    return identity
