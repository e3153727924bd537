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

    def device_applier(self, lab: Any) -> Any:
        """How ``lab.devices`` changes reach the running broker."""

    def rules_api_url(self) -> str:
        """Base URL of the EMQX-shaped rules API (the services locally, EMQX's dashboard in compose)."""


def backend_for(state_dir: Any) -> Any:
    """The backend recorded in ``state_dir``'s run file (local when none is recorded)."""
    from pathlib import Path

    from .._state import RUN_FILE, read_json
    from ..config import LabConfig

    run = read_json(Path(state_dir) / RUN_FILE)
    if run is not None and run.get("backend") == "compose":
        from .compose import ComposeBackend

        backend = ComposeBackend(Path(state_dir))
        backend.load_running()
        return backend
    from .local import LocalBackend

    return LocalBackend(LabConfig(state_dir=Path(state_dir)))
