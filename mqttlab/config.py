"""Frozen lab settings and the state directory that holds a lab's files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

PORT_NAMES = ("mqtt", "mqtts", "mqtts_client_cert", "api")


@dataclass(frozen=True)
class Ports:
    """Ports of the local stack. ``None`` means: pick a free one (and reuse it on restart).

    MQTT over WebSocket is served on the ``api`` port at path ``/mqtt``.
    """

    mqtt: int | None = None
    mqtts: int | None = None
    mqtts_client_cert: int | None = None
    api: int | None = None

    def __post_init__(self) -> None:
        for name in PORT_NAMES:
            value = getattr(self, name)
            if value is not None and not (0 < value < 65536):
                raise ConfigError(f"port {name}={value} is out of range", hint="use 1-65535, or leave it unset for a free port")

    def as_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in PORT_NAMES}


@dataclass(frozen=True)
class BrokerLimits:
    """Limits written into the broker config on purpose rather than left at mosquitto's defaults."""

    #: seconds between persistence saves; mosquitto's default (1800) loses 30 min of
    #: acknowledged messages on SIGKILL. 1 s bounds that window.
    autosave_interval: int = 1
    #: per-client queue for offline persistent sessions and slow consumers
    max_queued_messages: int = 100_000
    #: 1 MiB, the same order as EMQX's default and well above AWS IoT's 128 KB message limit
    max_packet_size: int = 1_048_576
    #: QoS 1/2 messages in flight to one client; the recorder acknowledges after each write, so at
    #: 50k msg/s it needs about a thousand in flight (100 capped it near 4-5k msg/s)
    max_inflight_messages: int = 1000
    max_keepalive: int = 3600
    sys_interval: int = 1


@dataclass(frozen=True)
class LabConfig:
    """Everything needed to start a local lab. Build it with :meth:`mqttlab.Lab.local`."""

    state_dir: Path
    host: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    limits: BrokerLimits = field(default_factory=BrokerLimits)
    devices_seed: Path | None = None
    mosquitto: str | None = None
    ready_timeout: float = 15.0
    stop_timeout: float = 10.0


def resolve_state_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The lab's state directory: ``path``, else ``$MQTTLAB_HOME``, else ``./.mqttlab``."""
    if path is not None:
        return Path(path).expanduser().resolve()
    env = os.environ.get("MQTTLAB_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.cwd() / ".mqttlab").resolve()
