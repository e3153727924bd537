"""Condition waits with timeouts whose errors say what was seen. Never a bare sleep."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import ReadinessTimeout

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    seen: Callable[[], str] | None = None,
    interval: float = 0.005,
    max_interval: float = 0.1,
    abort: Callable[[], None] | None = None,
) -> T:
    """Call ``probe`` until it returns a truthy value, and return that value.

    ``abort`` is called on every round and may raise (e.g. when the awaited process died).
    On timeout a :class:`ReadinessTimeout` names ``what`` was awaited and what ``seen`` reports.
    The back-off between probes is an event wait, not a fixed sleep, and grows from
    ``interval`` to ``max_interval``.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    delay = interval
    last_exc: BaseException | None = None
    while True:
        if abort is not None:
            abort()
        try:
            result = probe()
            if result:
                return result
        except OSError as exc:
            last_exc = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            observed = seen() if seen else (f"last error: {last_exc}" if last_exc else "condition stayed false")
            raise ReadinessTimeout(
                f"timed out after {timeout:.1f}s waiting for {what}; seen: {observed}",
                hint="look at `mqttlab logs` for the component's own account",
            )
        pause.wait(min(delay, remaining))
        delay = min(delay * 2, max_interval)


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """True when we could bind host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free on ``host`` (it may be taken again before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
