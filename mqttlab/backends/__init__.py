"""Stack backends behind :class:`mqttlab.Lab`: ``local`` (mosquitto + services) and ``compose``."""

from __future__ import annotations

from typing import Any, Protocol

from ..mqtt import BrokerEndpoint


class Backend(Protocol):
    """What a backend offers the Lab: lifecycle, status, endpoints, credentials, logs, fault hooks."""

    name: str

    def start(self) -> bool:
        """Start (or attach to) the stack; True when this call started it."""

    def stop(self) -> dict[str, str]:
        """Stop every component; returns how each ended."""

    def status(self) -> dict[str, Any]:
        """The ``status --json`` document."""

    def broker_endpoint(self, transport: str) -> BrokerEndpoint: ...

    def admin_credentials(self) -> tuple[str, str]: ...

    def api_credentials(self) -> tuple[str, str]: ...

    def api_url(self) -> str: ...

    def logs(self, service: str, lines: int = 100) -> str: ...

    def restart(self, service: str) -> None: ...

    def signal(self, service: str, sig: int) -> bool: ...

    def is_live(self) -> bool: ...
