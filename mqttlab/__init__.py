"""mqttlab: a lab for testing IoT device stacks over MQTT, from Jupyter, scripts and pytest."""

from __future__ import annotations

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
from .lab import Endpoints, Lab

__all__ = [
    "ApiError", "BrokerLimits", "ConfigError", "Device", "DeviceError", "Endpoints", "Lab", "LabNotRunningError",
    "MosquittoNotFoundError", "MqttConnectError", "MqttlabError", "PortInUseError", "Ports", "ReadinessTimeout",
    "StartupError", "StateDirError", "__version__",
]
