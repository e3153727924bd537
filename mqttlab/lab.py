"""``Lab``: the one object a notebook, script or test holds to own an MQTT stack."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from .backends import Backend
from .backends.local import LocalBackend
from .config import BrokerLimits, LabConfig, Ports, resolve_state_dir
from .devices import Device, DeviceRegistry
from .errors import ConfigError
from .fleet import FleetClient
from .history import History
from .mqtt import Protocol, Transport, connect_and_wait, make_client
from .rules import Rules
from .twins import Twins

if TYPE_CHECKING:
    from .faults import Faults
    from .metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    """Every URL of a running lab."""

    mqtt: str
    mqtts: str
    mqtts_client_cert: str
    ws: str
    api: str
    metrics: str
    docs: str

    def as_dict(self) -> dict[str, str]:
        return dict(vars(self))


class Lab:
    """A running MQTT stack and the clients of its capabilities.

    Start one with :meth:`Lab.local` (embedded mosquitto + services) or attach to a running one
    with :meth:`Lab.connect`. As a context manager, a lab this process started is stopped on exit,
    and a lab it merely attached to is left running.
    """

    def __init__(self, backend: Backend, *, owned: bool) -> None:
        self._backend = backend
        self._owned = owned
        self._clients: list[mqtt.Client] = []
        self._lock = threading.Lock()
        self._devices: DeviceRegistry | None = None
        self._twins: Twins | None = None
        self._fleet: FleetClient | None = None
        self._rules: Rules | None = None
        self._history: History | None = None

    # ------------------------------------------------------------ construction
    @classmethod
    def local(
        cls,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        ports: Ports | dict[str, int] | None = None,
        devices: str | os.PathLike[str] | None = None,
        limits: BrokerLimits | None = None,
        mosquitto: str | None = None,
        ready_timeout: float = 15.0,
    ) -> Lab:
        """Start the embedded stack (or attach to the one already running from ``state_dir``).

        Returns when mosquitto listens on every port and the services answer their health check.
        If start-up fails halfway, whatever was started is stopped before the error is raised.
        """
        if isinstance(ports, dict):
            unknown = set(ports) - set(Ports().as_dict())
            if unknown:
                raise ConfigError(f"unknown port names {sorted(unknown)}", hint=f"use {sorted(Ports().as_dict())}")
            ports = Ports(**ports)
        cfg = LabConfig(
            state_dir=resolve_state_dir(state_dir), host=host, ports=ports or Ports(),
            limits=limits or BrokerLimits(), devices_seed=Path(devices) if devices else None,
            mosquitto=mosquitto, ready_timeout=ready_timeout,
        )
        backend = LocalBackend(cfg)
        started = backend.start()
        return cls(backend, owned=started)

    @classmethod
    def compose(
        cls,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        compose_dir: str | os.PathLike[str] | None = None,
        observability: bool = True,
        ready_timeout: float = 600,
    ) -> Lab:
        """Start the compose stack (EMQX, InfluxDB, services; Prometheus and Grafana with ``observability``).

        Needs a Docker engine; waits until every service is healthy. Same API as :meth:`local`.
        """
        from .backends.compose import ComposeBackend

        backend = ComposeBackend(resolve_state_dir(state_dir), Path(compose_dir) if compose_dir else None,
                                 ("observability",) if observability else (), ready_timeout)
        backend.start()
        return cls(backend, owned=True)

    @classmethod
    def connect(cls, state_dir: str | os.PathLike[str] | None = None) -> Lab:
        """Attach to the lab running from ``state_dir`` (default ``$MQTTLAB_HOME`` or ``./.mqttlab``), either backend."""
        from ._state import RUN_FILE, read_json

        sd = resolve_state_dir(state_dir)
        run = read_json(sd / RUN_FILE)
        if run is not None and run.get("backend") == "compose":
            from .backends.compose import ComposeBackend

            compose = ComposeBackend(sd)
            compose.load_running()
            return cls(compose, owned=False)
        backend = LocalBackend(LabConfig(state_dir=sd))
        backend._require_run()
        return cls(backend, owned=False)

    # --------------------------------------------------------------- lifecycle
    def __enter__(self) -> Lab:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._owned:
            self.stop()
        else:
            self.close()

    def close(self) -> None:
        """Disconnect every client this object handed out; the stack keeps running."""
        if self._fleet is not None:
            self._fleet.close()
            self._fleet = None
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.disconnect()
                client.loop_stop()
            except Exception:  # a client the user already closed
                log.debug("client close failed", exc_info=True)
        if self._devices is not None:
            self._devices.close()
        if self._twins is not None:
            self._twins.close()
            self._twins = None
        if self._rules is not None:
            self._rules.close()
            self._rules = None
        if self._history is not None:
            self._history.close()
            self._history = None

    def stop(self) -> dict[str, str]:
        """Stop the stack (SIGTERM, then wait); returns how each component ended."""
        self.close()
        return self._backend.stop()

    def restart(self, service: str) -> None:
        """Restart one component: ``"mosquitto"`` or ``"services"``."""
        self._backend.restart(service)

    def signal(self, service: str, sig: int) -> bool:
        """Send a signal to one component (``"mosquitto"``/``"emqx"`` or ``"services"``); see :attr:`faults`."""
        return self._backend.signal(service, sig)

    @property
    def metrics(self) -> Metrics:
        """Broker and services metrics: ``scrape()`` now, ``record(every=...)`` over time."""
        from .metrics import Metrics

        return Metrics(self._backend.api_url() + "/metrics")

    @property
    def faults(self) -> Faults:
        """Fault injection: kill or restart the broker and services, network proxies, slow subscribers."""
        from .faults import Faults

        return Faults(self)

    # ------------------------------------------------------------------ facts
    @property
    def started_here(self) -> bool:
        """True when this object started the stack (and so stops it on context exit)."""
        return self._owned

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def state_dir(self) -> Path:
        return Path(self.status()["state_dir"])

    def status(self) -> dict[str, Any]:
        """The ``mqttlab status --json`` document."""
        return self._backend.status()

    @property
    def endpoints(self) -> Endpoints:
        tcp, tls = self._backend.broker_endpoint("tcp"), self._backend.broker_endpoint("tls")
        mtls, ws = self._backend.broker_endpoint("mtls"), self._backend.broker_endpoint("ws")
        api = self._backend.api_url()
        return Endpoints(
            mqtt=f"mqtt://{tcp.host}:{tcp.port}", mqtts=f"mqtts://{tls.host}:{tls.port}",
            mqtts_client_cert=f"mqtts://{mtls.host}:{mtls.port}", ws=f"ws://{ws.host}:{ws.port}{ws.ws_path}",
            api=api, metrics=f"{api}/metrics", docs=f"{api}/docs",
        )

    @property
    def ca_file(self) -> str:
        """PEM file of the lab CA (trust it to verify the broker's TLS listeners)."""
        ca = self._backend.broker_endpoint("tls").ca_file
        assert ca is not None
        return ca

    @property
    def admin(self) -> tuple[str, str]:
        """(username, password) of the lab's admin account."""
        return self._backend.admin_credentials()

    @property
    def api_auth(self) -> tuple[str, str]:
        """(key, secret) for the services' HTTP API (HTTP Basic, as EMQX's API keys)."""
        return self._backend.api_credentials()

    def logs(self, service: str = "mosquitto", lines: int = 100) -> str:
        return self._backend.logs(service, lines)

    # ------------------------------------------------------------------ clients
    def mqtt_client(
        self,
        *,
        client_id: str | None = None,
        protocol: Protocol | str = "5",
        transport: Transport = "tcp",
        device: Device | str | None = None,
        username: str | None = None,
        password: str | None = None,
        connect: bool = True,
        clean_start: bool = True,
        session_expiry: int | None = None,
        timeout: float = 10.0,
        userdata: Any = None,
    ) -> mqtt.Client:
        """A paho-mqtt 2.x client for this lab (MQTT 5 unless ``protocol="3.1.1"``).

        Credentials are the admin's unless ``device`` (a :class:`Device` or id) or ``username`` is
        given; ``transport="mtls"`` presents the device's client certificate. With ``connect=True``
        (default) it returns after CONNACK with the network loop running; it is disconnected
        when the lab is closed.
        """
        endpoint = self._backend.broker_endpoint(transport)
        certfile = keyfile = None
        if device is not None:
            dev = device if isinstance(device, Device) else self.devices.get(device)
            username, password = dev.username, dev.password
            certfile, keyfile = dev.cert_file, dev.key_file
            if transport == "mtls" and certfile is None:
                raise ConfigError(f"device {dev.id} has no client certificate",
                                  hint="add it with lab.devices.add(id, auth='cert')")
        elif username is None:
            username, password = self.admin
        client = make_client(endpoint, username=None if transport == "mtls" and device else username,
                             password=password, client_id=client_id, protocol=protocol,
                             certfile=certfile, keyfile=keyfile, userdata=userdata)
        if connect:
            connect_and_wait(client, endpoint, timeout=timeout, clean_start=clean_start,
                             session_expiry=session_expiry)
            with self._lock:
                self._clients.append(client)
        return client

    def broker_endpoint(self, transport: Transport = "tcp") -> Any:
        """Host, port and TLS material of one listener (for clients other than paho)."""
        return self._backend.broker_endpoint(transport)

    # ------------------------------------------------------------ capabilities
    @property
    def devices(self) -> DeviceRegistry:
        """The device registry: per-device credentials and topic confinement."""
        if self._devices is None:
            state_dir = Path(self._backend.status()["state_dir"])
            self._devices = DeviceRegistry(state_dir, self._backend.device_applier(self))
        return self._devices

    @property
    def fleet(self) -> FleetClient:
        """Simulated device fleets, checking monitors and benchmarks."""
        if self._fleet is None:
            self._fleet = FleetClient(self)
        return self._fleet

    @property
    def history(self) -> History:
        """Recorded messages: queries into pandas, charts, export/import, replay."""
        if self._history is None:
            from .aio._conn import ConnectOptions

            endpoint = self._backend.broker_endpoint("tcp")
            user, password = self.admin
            opts = ConnectOptions(endpoint.host, endpoint.port, f"mqttlab-replay-{os.getpid()}-{id(self):x}", user, password)
            self._history = History(self._backend.api_url(), self._backend.api_credentials(), opts)
        return self._history

    @property
    def rules(self) -> Rules:
        """Rules through EMQX's REST API shape (served by the lab's services locally)."""
        if self._rules is None:
            self._rules = Rules(self._backend.rules_api_url(), self._backend.api_credentials())
        return self._rules

    @property
    def twins(self) -> Twins:
        """Device twins (AWS IoT Device Shadow semantics), through the services' HTTP API."""
        if self._twins is None:
            self._twins = Twins(self._backend.api_url(), self._backend.api_credentials())
        return self._twins

    def __repr__(self) -> str:
        return f"<Lab backend={self.backend} owned={self._owned}>"
