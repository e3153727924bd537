"""The conformance check registry and runner: checks register with ``@check``; the runner runs them concurrently."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..fleet._target import Target
from ._client import Probe, connect
from ._deviations import explain
from ._model import CheckReport, CheckResult
from ._raw import NotApplicable

Outcome = tuple[bool, str]


def hx(code: int) -> str:
    return f"0x{code:02x}"


@dataclass
class Context:
    target: Target
    run: str

    def topic(self, name: str) -> str:
        return f"mqttlab-check/{self.run}/{name}"

    def cid(self, name: str) -> str:
        return f"chk-{self.run}-{name}"


CheckFn = Callable[[Context], Awaitable[Outcome]]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    ref: str
    protocol: str
    expected: str
    fn: CheckFn


CHECKS: list[Check] = []


def check(id: str, title: str, ref: str, protocol: str, expected: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(id, title, ref, protocol, expected, fn))
        return fn
    return register


async def pair(ctx: Context, name: str, qos: int, version: int = 5, sub_options: int = 0) -> tuple[Probe, Probe, str]:
    t = ctx.topic(name)
    sub = await connect(ctx.target, version=version, client_id=ctx.cid(name + "-s"))
    await sub.conn.subscribe([(t, qos)], options=sub_options)
    pub = await connect(ctx.target, version=version, client_id=ctx.cid(name + "-p"))
    return sub, pub, t


# --------------------------------------------------------------------------- runner
async def run_conformance(target: Target, broker: str, *, only: list[str] | None = None,
                          concurrency: int = 8) -> CheckReport:
    """Run the checks against ``target`` (an account that may publish and subscribe under ``mqttlab-check/#``)."""
    from . import _conformance  # noqa: F401  (importing it registers the checks)

    ctx = Context(target, uuid.uuid4().hex[:8])
    report = CheckReport("conformance", target.url(), broker)
    gate = asyncio.Semaphore(concurrency)
    chosen = [c for c in CHECKS if only is None or c.id in only]

    async def one(c: Check) -> CheckResult:
        async with gate:
            t0 = time.monotonic()
            try:
                passed, observed = await asyncio.wait_for(c.fn(ctx), 20)
                outcome = "pass" if passed else "fail"
            except NotApplicable as exc:
                passed, observed, outcome = False, str(exc), "skipped"
            except Exception as exc:  # a check that could not run says why, the others go on
                passed, observed, outcome = False, f"{type(exc).__name__}: {exc}", "error"
            note = explain(broker, c.id) if outcome == "fail" else ""  # only a real failure is excused
            result = CheckResult(c.id, c.title, c.ref, c.protocol, "deviation" if note else outcome,  # type: ignore[arg-type]
                                 c.expected, observed, note, seconds=round(time.monotonic() - t0, 3))
            return result

    report.results = list(await asyncio.gather(*(one(c) for c in chosen)))
    return report
