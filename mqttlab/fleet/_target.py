"""Where a fleet or benchmark connects: the lab's listeners or any broker URL."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..lab import Lab

_SCHEMES = {"mqtt": ("tcp", 1883), "tcp": ("tcp", 1883), "mqtts": ("tls", 8883), "ssl": ("tls", 8883),
            "ws": ("ws", 8083), "wss": ("wss", 8084)}


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    transport: str = "tcp"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    ws_path: str = "/mqtt"
    insecure: bool = False
    broker_pid: int | None = None  # known when the target is the local lab: lets benchmarks read broker CPU/RSS

    def ssl_context(self, certfile: str | None = None, keyfile: str | None = None) -> ssl.SSLContext | None:
        if self.transport not in ("tls", "wss"):
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if certfile:
            ctx.load_cert_chain(certfile, keyfile)
        return ctx

    def url(self) -> str:
        scheme = {v[0]: k for k, v in _SCHEMES.items() if k in ("mqtt", "mqtts", "ws", "wss")}[self.transport]
        path = self.ws_path if self.transport in ("ws", "wss") else ""
        return f"{scheme}://{self.host}:{self.port}{path}"


def parse_url(url: str, *, ca_file: str | None = None, insecure: bool = False) -> Target:
    """``mqtt://user:pass@host:1883``, ``mqtts://host:8883``, ``ws://host:8083/mqtt``, ``wss://...``."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ConfigError(f"not a broker URL: {url!r}", hint="use mqtt://[user:pass@]host:port, mqtts://, ws:// or wss://")
    transport, default_port = _SCHEMES[parts.scheme]
    return Target(parts.hostname, parts.port or default_port, transport,
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None,
                  ca_file, parts.path or "/mqtt", insecure)


def lab_target(lab: Lab, transport: str = "tcp") -> Target:
    """The lab's listener for ``transport`` with the admin credentials."""
    endpoint: Any = lab.broker_endpoint(transport)  # type: ignore[arg-type]
    user, password = lab.admin
    pid = lab.status().get("components", {}).get("mosquitto", {}).get("pid")
    return Target(endpoint.host, endpoint.port, transport, user, password, endpoint.ca_file, endpoint.ws_path,
                  broker_pid=pid)
