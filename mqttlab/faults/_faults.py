"""Broker and services faults through the lab's backend (processes locally, containers with compose)."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..lab import Lab
    from ._proxy import NetworkProxy
    from ._slow import SlowSubscriber

Component = Literal["broker", "services"]
_SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL, "SIGINT": signal.SIGINT}


@dataclass
class FaultEvent:
    """What a fault did: which component, which signal, how long it was down."""

    component: str
    signal: str
    down_seconds: float
    restarted: bool
    pid_before: int | None
    pid_after: int | None


class Faults:
    """Faults on one lab: ``lab.faults.kill_broker("SIGKILL")``, ``lab.faults.proxy()``, ..."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab

    def _service(self, component: Component) -> str:
        if component == "broker":
            return "mosquitto" if self._lab.backend == "local" else "emqx"
        if component == "services":
            return "services"
        raise ConfigError(f"unknown component {component!r}", hint="use 'broker' or 'services'")

    def _pid(self, service: str) -> int | None:
        pid = self._lab.status().get("components", {}).get(service, {}).get("pid")
        return int(pid) if pid else None

    def kill(self, component: Component, sig: str | int = "SIGKILL", *, restart: bool = True) -> FaultEvent:
        """Send ``sig`` to a component and (by default) start it again, waiting until it serves.

        SIGTERM lets mosquitto write its persistence file; SIGKILL does not, so whatever it accepted
        since its last autosave (1 s in the lab) exists only in the clients that received it.
        """
        service = self._service(component)
        signum = _SIGNALS[sig] if isinstance(sig, str) else signal.Signals(sig)
        before = self._pid(service)
        t0 = time.monotonic()
        self._lab.signal(service, int(signum))
        if restart:
            self._lab.restart(service)  # waits for the old process to be gone, then for readiness
        return FaultEvent(component, signal.Signals(signum).name, round(time.monotonic() - t0, 3), restart,
                          before, self._pid(service) if restart else None)

    def kill_broker(self, sig: str | int = "SIGKILL", *, restart: bool = True) -> FaultEvent:
        return self.kill("broker", sig, restart=restart)

    def stop_broker(self) -> FaultEvent:
        """Stop the broker gracefully (SIGTERM) and leave it down; :meth:`start_broker` brings it back."""
        return self.kill("broker", "SIGTERM", restart=False)

    def start_broker(self) -> None:
        self._lab.restart(self._service("broker"))

    def kill_services(self, sig: str | int = "SIGKILL", *, restart: bool = True) -> FaultEvent:
        return self.kill("services", sig, restart=restart)

    def proxy(self, transport: str = "tcp") -> NetworkProxy:
        """A loopback TCP proxy in front of the broker: point a client at ``proxy.port``, then
        ``drop()``, ``delay(seconds)``, ``cut()`` or ``heal()`` its traffic."""
        from ..fleet._target import lab_target
        from ._proxy import NetworkProxy

        target = lab_target(self._lab, transport)
        return NetworkProxy(target.host, target.port)

    def slow_subscriber(self, topic: str, *, per_message: float = 0.05, qos: int = 1) -> SlowSubscriber:
        """A subscriber that acknowledges one message every ``per_message`` seconds, so the broker queues."""
        from ..fleet._target import lab_target
        from ._slow import SlowSubscriber

        return SlowSubscriber(lab_target(self._lab), topic, per_message=per_message, qos=qos)
