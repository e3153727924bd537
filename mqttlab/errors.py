"""The exception tree. Every error says what happened and, in ``hint``, how to fix it."""

from __future__ import annotations


class MqttlabError(Exception):
    """Base class of every error mqttlab raises on purpose.

    ``hint`` names the fix; the CLI prints it under the message.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(MqttlabError):
    """A setting, file or argument is invalid."""


class MosquittoNotFoundError(ConfigError):
    """mosquitto (or its dynamic-security plugin) is not installed."""


class PortInUseError(ConfigError):
    """A port the lab was told to use is taken."""


class StateDirError(ConfigError):
    """The state directory cannot be used (unwritable, corrupt state file, ...)."""


class LabNotRunningError(MqttlabError):
    """An operation needs a running lab and there is none in the state directory."""


class StartupError(MqttlabError):
    """A component of the stack did not start; the message carries its log tail."""


class ReadinessTimeout(MqttlabError, TimeoutError):
    """A condition was not reached in time; the message says what was seen instead."""


class MqttConnectError(MqttlabError):
    """The broker refused or did not answer a connection."""


class DeviceError(MqttlabError):
    """A device registry operation failed (bad id, unknown device, broker refused)."""


class ApiError(MqttlabError):
    """The services HTTP API answered with an error.

    ``status`` is the HTTP status, ``code`` the EMQX/AWS-style error code.
    """

    def __init__(self, message: str, *, status: int, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code
