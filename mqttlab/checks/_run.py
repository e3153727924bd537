"""Turn what the user points at (a Lab, a URL, a Target) into a target, and run coroutines off the caller's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ..aio._loop import LoopThread
from ..fleet._target import Target, lab_target, parse_url
from ._client import close, connect

if TYPE_CHECKING:
    from ..lab import Lab

T = TypeVar("T")


def resolve(target: Lab | Target | str, *, ca_file: str | None = None, insecure: bool = False) -> Target:
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        return parse_url(target, ca_file=ca_file, insecure=insecure)
    return lab_target(target)


def run_blocking(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run on a private loop thread: safe from a notebook cell, whose own loop is already running."""
    loop = LoopThread("mqttlab-checks")
    try:
        return loop.run(coro, timeout)
    finally:
        loop.stop()


async def reachable(target: Target) -> None:
    """Fail early, with a typed error and a hint, when the target cannot be used at all."""
    from ..aio._conn import ConnectRefused
    from ..errors import MqttConnectError

    try:
        probe = await connect(target)
    except ConnectRefused as exc:
        raise MqttConnectError(f"{target.url()} refused the check account: {exc}",
                               hint="give an account that may publish and subscribe under mqttlab-check/#") from None
    except (OSError, asyncio.TimeoutError) as exc:
        raise MqttConnectError(f"cannot reach {target.url()}: {exc or type(exc).__name__}",
                               hint="is the broker running? check host, port and scheme "
                                    "(mqtt://, mqtts://, ws://), or start a lab with `mqttlab up`") from None
    await close(probe)


async def identify(target: Target, timeout: float = 1.5) -> str:
    """The broker's version string from its retained ``$SYS`` topics (mosquitto, EMQX), or "unknown"."""
    try:
        probe = await connect(target)
    except Exception:
        return "unknown"
    try:
        await probe.conn.subscribe([("$SYS/broker/version", 0), ("$SYS/brokers/+/version", 0)])
        await probe.wait(1, timeout)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        await close(probe)
    for m in probe.messages:
        text = m.payload.decode("utf-8", "replace")
        return text if "brokers/" not in m.topic else f"emqx {text}"
    return "unknown"
