"""``lab.fleet``: start simulated fleets in the background, monitor what arrives, run benchmarks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..aio._loop import LoopThread
from ..errors import ConfigError
from ._bench import BenchResult
from ._engine import DeviceCredentials, FleetEngine, FleetSpec
from ._monitor import MonitorCore
from ._schedule import Rate
from ._target import Target, lab_target
from ._workers import Coordinator

if TYPE_CHECKING:
    from ..lab import Lab


class Fleet:
    """A fleet running in the background: ``status()``, ``set_rate()``, ``stop()``, ``wait()``, ``panel()``."""

    def __init__(self, engine: FleetEngine, loop: LoopThread) -> None:
        self.engine, self._loop = engine, loop
        self._future: Future[Any] = loop.submit(engine.run())

    @property
    def running(self) -> bool:
        return not self._future.done()

    @property
    def device_ids(self) -> list[str]:
        return [d.creds.id for d in self.engine.devices]

    def status(self) -> dict[str, Any]:
        """Live counters: connected, sent, acked, reconnects, commands, ... plus elapsed time and send rate."""
        c = self.engine.counters.as_dict()
        start = self.engine.started_at or time.time()
        elapsed = (self.engine.ended_at or time.time()) - start
        return {**c, "devices": len(self.engine.devices), "running": self.running, "elapsed_s": round(elapsed, 3),
                "send_rate": round(c["sent"] / elapsed, 1) if elapsed > 0 else 0.0, "last_error": self.engine.last_error}

    def set_rate(self, per_second: float, pattern: str | None = None) -> None:
        """Change every device's rate while the fleet runs (each device re-anchors its schedule)."""
        rate = Rate(per_second, pattern or self.engine.rate.pattern, self.engine.rate.burst_size)  # type: ignore[arg-type]
        self._loop.call(setattr, self.engine, "rate", rate)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the fleet ends by itself (duration or message count reached)."""
        self._future.result(timeout)
        return self.status()

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """Stop publishing, wait for outstanding acknowledgements, disconnect every device."""
        self._loop.call(self.engine.stop)
        self._future.result(timeout)
        return self.status()

    def sent_per_device(self) -> dict[str, int]:
        return self.engine.sent_per_device()

    def panel(self) -> Any:
        from ._widgets import fleet_panel

        return fleet_panel(self)


class MultiFleet:
    """A fleet split over worker processes; the same interface as :class:`Fleet`."""

    def __init__(self, coordinator: Coordinator, loop: LoopThread) -> None:
        self.coordinator, self._loop = coordinator, loop
        self._future: Future[Any] = loop.submit(coordinator.run())
        self.rate = coordinator.spec.rate

    @property
    def running(self) -> bool:
        return not self._future.done()

    @property
    def device_ids(self) -> list[str]:
        return [c.id for c in self.coordinator.credentials]

    def status(self) -> dict[str, Any]:
        c = self.coordinator.counters()
        start = self.coordinator.started_at or time.time()
        elapsed = (self.coordinator.ended_at or time.time()) - start
        errors = [link.error for link in self.coordinator.links if link.error]
        return {**c, "devices": len(self.coordinator.credentials), "workers": len(self.coordinator.links),
                "running": self.running, "elapsed_s": round(elapsed, 3),
                "send_rate": round(c["sent"] / elapsed, 1) if elapsed > 0 else 0.0,
                "last_error": errors[-1] if errors else None}

    def set_rate(self, per_second: float, pattern: str | None = None) -> None:
        self.rate = Rate(per_second, pattern or self.rate.pattern, self.rate.burst_size)  # type: ignore[arg-type]
        self._loop.submit(self.coordinator.broadcast({"type": "rate", "rate": vars(self.rate)}))

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        self._future.result(timeout)
        return self.status()

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        self._loop.submit(self.coordinator.broadcast({"type": "stop"})).result(10)
        self._future.result(timeout)
        return self.status()

    def sent_per_device(self) -> dict[str, int]:
        return self.coordinator.sent_per_device()


class Monitor:
    """Subscribes to fleet traffic and checks it: ``report()`` gives loss/dup/reorder counts and latency."""

    def __init__(self, core: MonitorCore, loop: LoopThread) -> None:
        self.core, self._loop = core, loop
        self.granted = loop.run(core.start(), timeout=15)

    def report(self, sent: dict[str, int] | None = None) -> dict[str, Any]:
        return self._loop.run(_call(self.core.report, sent), timeout=10)

    def wait_for(self, messages: int, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until ``messages`` have arrived; the error says how many did."""
        from .._wait import wait_until

        wait_until(lambda: self.core.messages >= messages, timeout=timeout, what=f"{messages} messages",
                   seen=lambda: f"{self.core.messages} received", interval=0.01, max_interval=0.1)
        return self.report()

    def rate_series(self) -> list[tuple[float, int]]:
        return self._loop.run(_call(self.core.rate_series), timeout=10)

    def stop(self) -> None:
        self._loop.run(self.core.stop(), timeout=10)


async def _call(fn: Any, *args: Any) -> Any:
    return fn(*args)


class FleetClient:
    """The fleet capability of a lab (``lab.fleet``)."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab
        self._loop: LoopThread | None = None
        self._lock = threading.Lock()
        self.fleets: list[Fleet | MultiFleet] = []

    @property
    def loop(self) -> LoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread()
            return self._loop

    def _credentials(self, spec: FleetSpec) -> list[DeviceCredentials]:
        if spec.count < 1:
            raise ConfigError(f"a fleet needs at least one device, got count={spec.count}", hint="count=10")
        if spec.qos not in (0, 1, 2):
            raise ConfigError(f"qos must be 0, 1 or 2, got {spec.qos}", hint="qos=1")
        auth = "cert" if spec.transport == "mtls" else "password"
        devices = self._lab.devices.add_many([{"id": i, "auth": auth} for i in spec.device_ids()])
        return [DeviceCredentials(d.id, d.username, d.password, d.cert_file, d.key_file) for d in devices]

    def launcher(self, **defaults: Any) -> Any:
        """An ipywidgets panel: devices, profile, rate and QoS sliders, Start; then the fleet's live panel."""
        from ._widgets import fleet_launcher

        return fleet_launcher(self, **defaults)

    def start(self, count: int = 10, profile: Any = "thermostat", *, rate: float | Rate = 1.0, workers: int = 1,
              **options: Any) -> Fleet | MultiFleet:
        """Start ``count`` simulated devices in the background (registered in ``lab.devices``).

        Options are :class:`FleetSpec` fields: ``qos``, ``protocol`` ("5"/"3.1.1"), ``transport``
        ("tcp"/"tls"/"ws"), ``duration``, ``messages``, ``connect_rate``, ``clean``, ``session_expiry``,
        ``will``, ``stamp`` ("payload"/"user_property"), ``seed``, ``reactive``, ``prefix``, ...
        ``workers=N`` splits the devices over N worker processes (built-in profiles only).
        """
        spec = FleetSpec(count=count, profile=profile, rate=rate if isinstance(rate, Rate) else Rate(rate), **options)
        creds = self._credentials(spec)
        target = lab_target(self._lab, "tcp" if spec.transport == "mtls" else spec.transport)
        target = Target(target.host, target.port, target.transport, None, None, target.ca_file, target.ws_path)
        fleet: Fleet | MultiFleet
        if workers > 1:
            fleet = MultiFleet(Coordinator(spec, target, creds, workers), self.loop)
        else:
            fleet = Fleet(FleetEngine(spec, target, creds), self.loop)
        self.fleets.append(fleet)
        return fleet

    def run(self, count: int = 10, profile: Any = "thermostat", *, timeout: float | None = None,
            **options: Any) -> dict[str, Any]:
        """Run a bounded fleet (``duration=`` and/or ``messages=``) to the end; returns its final status."""
        if options.get("duration") is None and options.get("messages") is None:
            raise ConfigError("run() needs duration= or messages=", hint="or use start() and stop() yourself")
        return self.start(count, profile, **options).wait(timeout)

    def monitor(self, topic_filter: str = "devices/+/telemetry", qos: int = 1, **options: Any) -> Monitor:
        """A checking subscriber (admin account) on the fleet's telemetry."""
        target = lab_target(self._lab, "tcp")
        core = MonitorCore(target, [(topic_filter, qos)], client_id=options.pop("client_id", f"monitor-{id(self):x}"),
                           **options)
        return Monitor(core, self.loop)

    def bench(self, kind: str, *, transport: str = "tcp", record: bool = False, **options: Any) -> BenchResult:
        """Run a benchmark (``"pub"``, ``"sub"``, ``"latency"``, ``"conn"``) against the lab's broker.

        The recorder is paused meanwhile (``record=True`` keeps it on): the figures are the broker's, not
        the broker's plus a second delivery of every message to the recorder.
        """
        import contextlib

        from ._bench import BENCHMARKS

        if kind not in BENCHMARKS:
            raise ConfigError(f"unknown benchmark {kind!r}", hint=f"one of {', '.join(BENCHMARKS)}")
        pause = contextlib.nullcontext() if record else self._lab.history.paused()
        with pause:
            result: BenchResult = self.loop.run(BENCHMARKS[kind](lab_target(self._lab, transport), **options))
        return result

    def close(self) -> None:
        for fleet in self.fleets:
            if fleet.running:
                fleet.stop()
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
