"""Devices: the registry of credentials and per-device topic confinement (``lab.devices``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DeviceError
from ._appliers import Applier, DynsecApplier, EmqxApplier
from ._dynsec import config_document, device_topics
from ._registry import AuthKind, Device, RegistryFile, load_seed, validate_device_id

__all__ = ["Applier", "AuthKind", "Device", "DeviceRegistry", "DynsecApplier", "EmqxApplier", "config_document",
           "device_topics", "load_seed", "validate_device_id"]


class DeviceRegistry:
    """``lab.devices``: add, list and remove devices while the broker runs.

    Changes are written to the state dir (so they survive restarts) and applied to the running
    broker at once: mosquitto's dynamic-security API locally, EMQX's authentication API in compose.
    """

    def __init__(self, state_dir: Path, applier: Applier) -> None:
        self._file = RegistryFile(state_dir)
        self._applier = applier

    def add(self, device_id: str, *, auth: AuthKind = "password", password: str | None = None) -> Device:
        """Register one device (idempotent: an existing device is returned unchanged)."""
        return self.add_many([{"id": device_id, "auth": auth, "password": password}])[0]

    def add_many(self, entries: list[dict[str, Any]] | list[str]) -> list[Device]:
        """Register many devices in one go; entries are ids or ``{"id", "auth", "password"}``."""
        normalised = [{"id": e} if isinstance(e, str) else dict(e) for e in entries]
        before = {d.id for d in self._file.devices()}
        devices = self._file.upsert(normalised)
        fresh = [d for d in devices if d.id not in before]
        try:
            self._applier.add(fresh)
        except DeviceError:
            for dev in fresh:
                self._file.remove(dev.id)
            raise
        return devices

    def get(self, device_id: str) -> Device:
        for dev in self._file.devices():
            if dev.id == device_id:
                return dev
        raise DeviceError(f"no device {device_id!r} in the registry", hint="add it with lab.devices.add(...)")

    def list(self) -> list[Device]:
        """All registered devices."""
        return self._file.devices()

    def remove(self, device_id: str) -> None:
        """Unregister a device; its credentials stop working at once."""
        if not self._file.remove(device_id):
            raise DeviceError(f"no device {device_id!r} in the registry", hint="lab.devices.list() shows the known ids")
        self._applier.remove(device_id)

    def __contains__(self, device_id: object) -> bool:
        return any(d.id == device_id for d in self._file.devices())

    def __iter__(self) -> Iterator[Device]:
        return iter(self._file.devices())

    def __len__(self) -> int:
        return len(self._file.devices())

    def close(self) -> None:
        self._applier.close()

