"""Checks any user can point at the lab, at EMQX or at their own broker.

- :func:`conformance`: MQTT 3.1.1 / 5.0 behaviours, each tied to its normative statement;
- :func:`security`: probes of authentication, ACLs, malformed input and TLS, each with whether the
  broker still served others afterwards;
- :func:`nothing_lost`: a sequence-ledger check through broker restarts (``mqttlab.faults``).

Each returns a :class:`CheckReport` (``.frame()`` for a DataFrame, ``.to_json()``, ``.ok``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from ._model import CheckReport, CheckResult

if TYPE_CHECKING:
    from ..fleet._target import Target
    from ..lab import Lab
    from ._ledger import LedgerVerdict

__all__ = ["CheckReport", "CheckResult", "LedgerVerdict", "conformance", "nothing_lost", "security"]


def conformance(target: Lab | Target | str, *, broker: str | None = None, only: list[str] | None = None,
                ca_file: str | None = None, insecure: bool = False, timeout: float = 120.0) -> CheckReport:
    """Run the conformance checks against a lab or a broker URL (``mqtt://user:pass@host:1883``).

    ``broker`` names the broker for its known deviations (read from ``$SYS`` when not given).
    The account needs to publish and subscribe under ``mqttlab-check/#`` and ``$aws/mqttlab-check/#``.
    """
    from ..errors import ConfigError
    from ._conformance import CHECKS
    from ._registry import run_conformance
    from ._run import identify, reachable, resolve, run_blocking

    unknown = sorted(set(only or ()) - {c.id for c in CHECKS})
    if unknown:
        raise ConfigError(f"unknown conformance check id(s): {', '.join(unknown)}",
                          hint=f"ids run from {CHECKS[0].id} to {CHECKS[-1].id}; omit `only` to run them all")
    t = resolve(target, ca_file=ca_file, insecure=insecure)

    async def go() -> CheckReport:
        await reachable(t)
        name = broker or await identify(t)
        return await run_conformance(t, name, only=only)

    return run_blocking(go(), timeout)


def security(target: Lab | Target | str, *, devices: tuple[str, str] | None = None,
             device_topic: str = "devices/{id}/telemetry", tls_url: str | None = None,
             mtls_url: str | None = None, ca_file: str | None = None, broker: str | None = None,
             timeout: float = 300.0) -> CheckReport:
    """Run the security probes against a lab or a broker URL (the URL's account is the admin observer).

    Against a lab, two throw-away device accounts and its TLS listeners are used. Against a URL, give
    ``devices=("userA:passA", "userB:passB")`` (restricted accounts confined to ``device_topic``) and
    ``tls_url``/``mtls_url`` for the TLS probes; probes without what they need are skipped.
    """
    from ..errors import ConfigError
    from ..fleet._target import Target, lab_target, parse_url
    from ._run import identify, reachable, resolve, run_blocking
    from ._security import SecurityTargets, run_security

    admin = resolve(target, ca_file=ca_file)
    made: list[str] = []
    if isinstance(target, (str, Target)):
        malformed = [a for a in devices or () if ":" not in a]
        if malformed:
            raise ConfigError(f"device accounts must be user:password, got {malformed}",
                              hint='devices=("sensor-a:secretA", "sensor-b:secretB")')
        a_b = [replace(admin, username=u, password=p) for u, p in (a.split(":", 1) for a in devices or ())]
        tls = parse_url(tls_url, ca_file=ca_file) if tls_url else None
        mtls = parse_url(mtls_url, ca_file=ca_file) if mtls_url else None
    else:
        import uuid

        run = uuid.uuid4().hex[:6]
        devs = [target.devices.add(f"sec-{run}-{x}") for x in "ab"]
        made = [d.id for d in devs]
        a_b = [replace(admin, username=d.username, password=d.password) for d in devs]
        tls, mtls = lab_target(target, "tls"), lab_target(target, "mtls")
    targets = SecurityTargets(admin, a_b[0] if a_b else None, a_b[1] if len(a_b) > 1 else None, device_topic,
                              tls, mtls)

    async def go() -> CheckReport:
        await reachable(admin)
        return await run_security(targets, broker or await identify(admin))

    try:
        return run_blocking(go(), timeout)
    finally:
        for device_id in made:
            target.devices.remove(device_id)  # type: ignore[union-attr]


def nothing_lost(lab: Lab, faults: list[str] | tuple[str, ...] = ("SIGTERM",) * 10 + ("SIGKILL",) * 10, *,
                 publishers: int = 2, rate: float = 1000.0, per_round: int = 2000,
                 offline_during_faults: bool = False, drain_timeout: float = 20.0,
                 timeout: float = 600.0) -> LedgerVerdict:
    """Publish sequenced QoS 1 and 2 traffic while the broker is killed with each signal in ``faults``
    (and restarted); verify that every acknowledged message reached a persistent-session subscriber.

    ``publishers`` x {QoS 1, QoS 2} streams at ``rate`` msg/s each; ``per_round`` acknowledged
    messages between faults. ``offline_during_faults=True`` takes the subscriber offline (session kept)
    for the second half of each round, so the broker holds those messages when the fault hits.
    ``drain_timeout``: how long to wait at the end for acknowledged messages still on their way.
    """
    from ..errors import ConfigError
    from ._ledger import run_nothing_lost
    from ._run import resolve, run_blocking

    bad = sorted({s for s in faults if s not in ("SIGTERM", "SIGKILL", "SIGINT")})
    if bad or not faults:
        raise ConfigError(f"faults must be a non-empty list of SIGTERM/SIGKILL/SIGINT, got {bad or list(faults)}",
                          hint='e.g. ["SIGTERM"] * 10 + ["SIGKILL"] * 10')
    target = resolve(lab)
    injector = lab.faults

    def fault(sig: str) -> Callable[[], dict[str, Any]]:
        return lambda: asdict(injector.kill_broker(sig))

    return run_blocking(run_nothing_lost(target, [fault(s) for s in faults], publishers=publishers, rate=rate,
                                         per_round=per_round, offline_during_faults=offline_during_faults,
                                         drain_timeout=drain_timeout), timeout)


def __getattr__(name: str) -> Any:
    if name == "LedgerVerdict":
        from ._ledger import LedgerVerdict
        return LedgerVerdict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
