"""mqttlab: a lab for testing IoT device stacks over MQTT, from Jupyter, scripts and pytest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .config import BrokerLimits, Ports
from .devices import Device
from .errors import (
    ApiError,
    ConfigError,
    DeviceError,
    LabNotRunningError,
    MosquittoNotFoundError,
    MqttConnectError,
    MqttlabError,
    PortInUseError,
    ReadinessTimeout,
    StartupError,
    StateDirError,
)

if TYPE_CHECKING:
    from .lab import Endpoints, Lab


def __getattr__(name: str) -> Any:
    # Lab pulls in every capability client; loading it on first use keeps ``import mqttlab.<module>``
    # (the services process, the CLI's fast paths) light
    if name in ("Lab", "Endpoints"):
        from . import lab

        return getattr(lab, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ApiError", "BrokerLimits", "ConfigError", "Device", "DeviceError", "Endpoints", "Lab", "LabNotRunningError",
    "MosquittoNotFoundError", "MqttConnectError", "MqttlabError", "PortInUseError", "Ports", "ReadinessTimeout",
    "StartupError", "StateDirError", "__version__",
]
