"""The device registry: who may connect, with which credentials, confined to which topics."""

from __future__ import annotations

import fcntl
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt

from .._state import read_json, write_json
from ..errors import ConfigError, DeviceError
from ..pki import CertificateAuthority
from . import _dynsec

AuthKind = Literal["password", "cert"]
# AWS IoT thing-name rules: also keeps MQTT wildcards, '/' and '$' out of ACL patterns.
_ID_RE = re.compile(r"^[A-Za-z0-9_:\-]{1,128}$")
_CONTROL = "$CONTROL/dynamic-security/v1"


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is a valid device/thing name, else raise :class:`DeviceError`."""
    if not isinstance(device_id, str) or not _ID_RE.match(device_id):
        raise DeviceError(
            f"invalid device id {device_id!r}",
            hint="use 1-128 characters from A-Z a-z 0-9 _ - : (AWS IoT thing-name rules; no '/', '+', '#' or '$')",
        )
    return device_id


@dataclass(frozen=True)
class Device:
    """A registered device and its credentials."""

    id: str
    password: str
    auth: AuthKind = "password"
    cert_file: str | None = None
    key_file: str | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def username(self) -> str:
        return self.id

    @property
    def telemetry_topic(self) -> str:
        return f"devices/{self.id}/telemetry"

    @property
    def command_topic(self) -> str:
        return f"devices/{self.id}/cmd"

    @property
    def topics(self) -> list[str]:
        """Topic filters this device may publish and subscribe to."""
        return _dynsec.device_topics(self.id)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "password": self.password, "auth": self.auth, "cert_file": self.cert_file,
                "key_file": self.key_file, "created_at": self.created_at}


def load_seed(path: Path) -> list[dict[str, Any]]:
    """Devices declared in a seed file: ``{"devices": [{"id": ..., "auth": "password"|"cert"}]}`` or a bare list."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"device seed file {path} does not exist", hint="fix the path or omit it") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"device seed file {path} is not valid JSON (line {exc.lineno}: {exc.msg})",
                          hint="fix the JSON; see README 'Devices'") from exc
    items = data.get("devices") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"device seed file {path} must hold a list of devices", hint='{"devices": [{"id": "thermo-1"}]}')
    out = []
    for item in items:
        entry = {"id": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or "id" not in entry:
            raise ConfigError(f"device seed entry {item!r} has no id", hint='each entry is {"id": "...", "auth": "password"}')
        validate_device_id(entry["id"])
        if entry.get("auth", "password") not in ("password", "cert"):
            raise ConfigError(f"device {entry['id']}: auth must be 'password' or 'cert'", hint="fix the seed file")
        out.append(entry)
    return out


class RegistryFile:
    """``devices.json`` in the state dir; every read-modify-write holds an exclusive file lock."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "devices.json"
        self._lock_path = state_dir / ".devices.lock"
        self._ca_dir = state_dir / "tls"

    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = read_json(self.path) or {"devices": {}}
            yield data
            write_json(self.path, data)

    def devices(self) -> list[Device]:
        data = read_json(self.path) or {"devices": {}}
        return [Device(**d) for d in data["devices"].values()]

    def upsert(self, entries: list[dict[str, Any]], *, replace: bool = False) -> list[Device]:
        """Add devices (idempotent for existing ids unless ``replace``); returns them with credentials."""
        created: list[Device] = []
        with self.locked() as data:
            for entry in entries:
                did = validate_device_id(entry["id"])
                existing = data["devices"].get(did)
                if existing is not None and not replace:
                    created.append(Device(**existing))
                    continue
                auth: AuthKind = entry.get("auth", "password")
                dev = Device(id=did, password=entry.get("password") or secrets.token_urlsafe(12), auth=auth)
                if auth == "cert":
                    pair = CertificateAuthority(self._ca_dir).client_cert(self._ca_dir / "devices", did)
                    dev = Device(id=did, password=dev.password, auth=auth, cert_file=str(pair.cert), key_file=str(pair.key))
                data["devices"][did] = dev.as_dict()
                created.append(dev)
        return created

    def remove(self, device_id: str) -> bool:
        with self.locked() as data:
            return data["devices"].pop(device_id, None) is not None


class DynsecControl:
    """Sends dynamic-security commands over MQTT and waits for the broker's answers."""

    def __init__(self, client_factory: Callable[[], mqtt.Client], timeout: float = 5.0) -> None:
        self._factory = client_factory
        self._client: mqtt.Client | None = None
        self._timeout = timeout
        self._pending: dict[str, tuple[threading.Event, list[Any]]] = {}
        self._lock = threading.Lock()

    def _ensure(self) -> mqtt.Client:
        with self._lock:
            if self._client is None:
                client = self._factory()
                client.message_callback_add(f"{_CONTROL}/response", self._on_response)
                rc, _mid = client.subscribe(f"{_CONTROL}/response", qos=1)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    raise DeviceError("could not subscribe to the dynamic-security responses", hint="is the broker up?")
                self._client = client
            return self._client

    def _on_response(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        for resp in responses:
            corr = resp.get("correlationData", "")
            key = corr.rsplit(":", 1)[0]
            slot = self._pending.get(key)
            if slot:
                slot[1].append(resp)
                if len(slot[1]) >= int(corr.rsplit(":", 1)[1]):
                    slot[0].set()

    def run(self, commands: list[dict[str, Any]], *, ignore: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Run commands in one control message; raise :class:`DeviceError` on the first error not in ``ignore``."""
        if not commands:
            return []
        client = self._ensure()
        key = uuid.uuid4().hex
        total = len(commands)
        event = threading.Event()
        answers: list[Any] = []
        self._pending[key] = (event, answers)
        try:
            body = [{**cmd, "correlationData": f"{key}:{total}"} for cmd in commands]
            client.publish(_CONTROL, json.dumps({"commands": body}), qos=1)
            if not event.wait(self._timeout):
                raise DeviceError(
                    f"the broker answered {len(answers)} of {total} dynamic-security commands within {self._timeout}s",
                    hint="check `mqttlab logs mosquitto`; is the dynamic-security plugin loaded?",
                )
        finally:
            self._pending.pop(key, None)
        for answer in answers:
            err = answer.get("error")
            if err and not any(tag in err for tag in ignore):
                raise DeviceError(f"broker refused {answer.get('command')}: {err}", hint="see `mqttlab logs mosquitto`")
        return answers

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
