"""The compose backend: EMQX, InfluxDB, Prometheus, Grafana and the services image under Docker Compose."""

from ._backend import ComposeBackend
from ._runner import ComposeError, DockerUnavailableError

__all__ = ["ComposeBackend", "ComposeError", "DockerUnavailableError"]
