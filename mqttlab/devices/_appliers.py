"""How registry changes reach a running broker: mosquitto's dynamic security, or EMQX's authentication API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from ..errors import DeviceError
from ._dynsec import add_device_commands, remove_device_commands
from ._registry import Device, DynsecControl

log = logging.getLogger(__name__)


class Applier(Protocol):
    def add(self, devices: list[Device]) -> None: ...

    def remove(self, device_id: str) -> None: ...

    def close(self) -> None: ...


class DynsecApplier:
    """mosquitto: dynamic-security commands over MQTT; bulk additions regenerate the config and restart."""

    #: above this many new devices at once, restarting the broker with a regenerated config beats
    #: mosquitto 2.0's dynamic-security API, which rewrites its whole config file after every command
    #: (measured: 800 devices took 11.5 s that way, growing quadratically)
    BULK_THRESHOLD = 100

    def __init__(self, admin_client: Callable[[], mqtt.Client], *, live: Callable[[], bool],
                 reload_broker: Callable[[], None] | None = None) -> None:
        self._control = DynsecControl(admin_client)
        self._live = live
        self._reload = reload_broker

    def add(self, devices: list[Device]) -> None:
        if not devices or not self._live():
            return  # written to the registry; the broker reads it when it starts
        if len(devices) > self.BULK_THRESHOLD and self._reload is not None:
            log.warning("registering %d devices at once: restarting the broker with a regenerated config "
                        "(clients reconnect; persistent sessions are kept)", len(devices))
            self._control.close()
            self._reload()
            return
        commands: list[dict[str, Any]] = []
        for dev in devices:
            commands += add_device_commands(dev.id, dev.password)
        for i in range(0, len(commands), 1000):  # keeps each control message well under max_packet_size
            self._control.run(commands[i:i + 1000], ignore=("already exists",))

    def remove(self, device_id: str) -> None:
        if self._live():
            self._control.run(remove_device_commands(device_id), ignore=("not found",))

    def close(self) -> None:
        self._control.close()


class EmqxApplier:
    """EMQX: users of the built-in-database authenticator through its REST API (the ACL file confines them)."""

    PATH = "/api/v5/authentication/password_based:built_in_database/users"

    def __init__(self, base_url: str, auth: tuple[str, str]) -> None:
        import httpx

        self._http = httpx.Client(base_url=base_url, auth=auth, timeout=10)

    def add(self, devices: list[Device]) -> None:
        for dev in devices:
            resp = self._http.post(self.PATH, json={"user_id": dev.id, "password": dev.password, "is_superuser": False})
            if resp.status_code == 409:  # already there: make the password match the registry
                resp = self._http.put(f"{self.PATH}/{dev.id}", json={"password": dev.password, "is_superuser": False})
            if resp.status_code >= 400:
                raise DeviceError(f"EMQX refused user {dev.id}: {resp.status_code} {resp.text[:200]}",
                                  hint="check the API key in compose/.env and `mqttlab logs emqx`")

    def remove(self, device_id: str) -> None:
        resp = self._http.delete(f"{self.PATH}/{device_id}")
        if resp.status_code not in (204, 404):
            raise DeviceError(f"EMQX refused to delete {device_id}: {resp.status_code}", hint="see `mqttlab logs emqx`")

    def close(self) -> None:
        self._http.close()
