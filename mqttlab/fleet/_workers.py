"""Fleets across worker processes (and machines): a coordinator and workers speaking JSON lines over TCP.

The coordinator listens on a TCP port; each worker (``python -m mqttlab.fleet.worker HOST PORT``)
connects, says hello, receives its slice of devices, runs them with its own event loop and streams
its counters back. Nothing in the protocol assumes the same machine: start workers on other hosts
against a coordinator bound to a reachable address to go beyond one machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any

from ._engine import Counters, DeviceCredentials, FleetEngine, FleetSpec
from ._schedule import Rate
from ._target import Target

PROTOCOL_VERSION = 1
LINE_LIMIT = 1 << 26  # a job carries every device's credentials on one line


def spec_to_dict(spec: FleetSpec) -> dict[str, Any]:
    if not isinstance(spec.profile, str):
        from ..errors import ConfigError

        raise ConfigError("worker processes need a built-in profile name",
                          hint="custom profile functions run in-process: use workers=1 for them")
    data = dataclasses.asdict(spec)
    data["rate"] = dataclasses.asdict(spec.rate)
    return data


def spec_from_dict(data: dict[str, Any]) -> FleetSpec:
    return FleetSpec(**{**data, "rate": Rate(**data["rate"])})


async def _send(writer: asyncio.StreamWriter, msg: dict[str, Any]) -> None:
    writer.write(json.dumps(msg).encode() + b"\n")
    await writer.drain()


class WorkerLink:
    """The coordinator's view of one worker."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        self.reader, self.writer, self.name = reader, writer, name
        self.counters: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.done = asyncio.Event()
        self.error: str | None = None

    async def listen(self) -> None:
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    self.error = self.error or f"worker {self.name} exited without reporting its end"
                    break
                msg = json.loads(line)
                if msg["type"] in ("status", "done"):
                    self.counters = msg["counters"]
                    self.sent = msg.get("sent", self.sent)
                if msg["type"] == "done":
                    break
                if msg["type"] == "error":
                    self.error = msg["message"]
                    break
        finally:
            self.done.set()

    async def send(self, msg: dict[str, Any]) -> None:
        await _send(self.writer, msg)


class Coordinator:
    """Spawns ``workers`` local worker processes (remote ones may join) and splits a fleet among them."""

    def __init__(self, spec: FleetSpec, target: Target, credentials: list[DeviceCredentials], workers: int,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.spec, self.target, self.credentials = spec, target, credentials
        self.n, self.host, self.port = workers, host, port
        self.links: list[WorkerLink] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._joined = asyncio.Event()

    async def _on_worker(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = json.loads(await reader.readline())
        if hello.get("type") != "hello" or hello.get("version") != PROTOCOL_VERSION:
            writer.close()
            return
        self.links.append(WorkerLink(reader, writer, hello.get("worker", "?")))
        if len(self.links) >= self.n:
            self._joined.set()

    async def run(self) -> None:
        server = await asyncio.start_server(self._on_worker, self.host, self.port, limit=LINE_LIMIT)
        port = server.sockets[0].getsockname()[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([p for p in sys.path if p])}
        for i in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-m", "mqttlab.fleet.worker", self.host, str(port),
                                                f"w{i}"], env=env, stdin=subprocess.DEVNULL))
        try:
            await asyncio.wait_for(self._joined.wait(), 30)
            self.started_at = time.time()
            spec = spec_to_dict(self.spec)
            target = dataclasses.asdict(self.target)
            for i, link in enumerate(self.links):
                part = self.credentials[i:: len(self.links)]
                await link.send({"type": "run", "spec": {**spec, "count": len(part)}, "target": target,
                                 "credentials": [dataclasses.asdict(c) for c in part]})
            await asyncio.gather(*(link.listen() for link in self.links))
        finally:
            self.ended_at = time.time()
            server.close()
            for proc in self.procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.terminate()

    async def broadcast(self, msg: dict[str, Any]) -> None:
        for link in self.links:
            if not link.done.is_set():
                await link.send(msg)

    def counters(self) -> dict[str, int]:
        total = Counters().as_dict()
        for link in self.links:
            for key, value in link.counters.items():
                total[key] = total.get(key, 0) + value
        return total

    def sent_per_device(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for link in self.links:
            out.update(link.sent)
        return out


async def worker_main(host: str, port: int, name: str) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
    await _send(writer, {"type": "hello", "worker": name, "version": PROTOCOL_VERSION, "pid": os.getpid()})
    job = json.loads(await reader.readline())
    spec = spec_from_dict(job["spec"])
    engine = FleetEngine(spec, Target(**job["target"]), [DeviceCredentials(**c) for c in job["credentials"]])
    run = asyncio.create_task(engine.run())

    async def commands() -> None:
        while True:
            line = await reader.readline()
            if not line:
                engine.stop()
                return
            msg = json.loads(line)
            if msg["type"] == "stop":
                engine.stop()
            elif msg["type"] == "rate":
                engine.rate = Rate(**msg["rate"])

    listener = asyncio.create_task(commands())
    while not run.done():
        await _send(writer, {"type": "status", "counters": engine.counters.as_dict()})
        await asyncio.wait([run], timeout=0.5)
    listener.cancel()
    exc = run.exception()
    if exc is not None:
        await _send(writer, {"type": "error", "message": repr(exc)})
    else:
        await _send(writer, {"type": "done", "counters": engine.counters.as_dict(), "sent": engine.sent_per_device()})
    writer.close()
