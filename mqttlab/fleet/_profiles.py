"""Device profiles: seeded, reproducible telemetry, and how a device reacts to commands and deltas."""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable
from typing import Any, Protocol, cast

DAY = 86_400.0


class Profile(Protocol):
    """What a device profile offers. ``sample`` is called for each message; ``apply`` for commands."""

    def sample(self, t: float) -> dict[str, Any]: ...

    def apply(self, command: dict[str, Any]) -> dict[str, Any]: ...


class _Base:
    def __init__(self, device_id: str, rng: random.Random) -> None:
        self.device_id, self.rng = device_id, rng
        self.settings: dict[str, Any] = {}

    def sample(self, t: float) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        """Accept the command's fields as settings and report them back (override to refuse or clamp)."""
        self.settings.update(command)
        return dict(command)


class Thermostat(_Base):
    """Room temperature: daily cycle + random walk, drifting toward a set-point; humidity; heating state."""

    def __init__(self, device_id: str, rng: random.Random) -> None:
        super().__init__(device_id, rng)
        self.temp = rng.uniform(18.0, 23.0)
        self.humidity = rng.uniform(35.0, 55.0)
        self.settings = {"setpoint": 21.0, "mode": "auto"}

    def sample(self, t: float) -> dict[str, Any]:
        outdoor_pull = 1.5 * math.sin(2 * math.pi * ((t % DAY) / DAY - 0.25))
        setpoint = float(self.settings.get("setpoint", 21.0))
        self.temp += 0.05 * (setpoint + 0.2 * outdoor_pull - self.temp) + self.rng.gauss(0, 0.05)
        self.humidity = min(90.0, max(20.0, self.humidity + self.rng.gauss(0, 0.3)))
        return {"temperature": round(self.temp, 2), "humidity": round(self.humidity, 1),
                "setpoint": setpoint, "heating": self.temp < setpoint - 0.3}

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        fields = dict(command)
        if "setpoint" in fields:  # real thermostats clamp their range
            fields["setpoint"] = min(30.0, max(5.0, float(fields["setpoint"])))
        self.settings.update(fields)
        return fields


class SmartMeter(_Base):
    """Household power: a daily load curve with morning/evening peaks, noise, a monotonic energy counter."""

    def __init__(self, device_id: str, rng: random.Random) -> None:
        super().__init__(device_id, rng)
        self.energy_kwh = rng.uniform(1000, 20000)
        self.base_w = rng.uniform(150, 400)
        self.last_t: float | None = None

    def sample(self, t: float) -> dict[str, Any]:
        hour = (t % DAY) / 3600
        peaks = 900 * math.exp(-((hour - 7.5) ** 2) / 2) + 1400 * math.exp(-((hour - 19) ** 2) / 3)
        power = max(50.0, self.base_w + peaks + self.rng.gauss(0, 60))
        if self.last_t is not None:
            self.energy_kwh += power * max(0.0, t - self.last_t) / 3.6e6
        self.last_t = t
        voltage = 230 + self.rng.gauss(0, 1.5)
        return {"power_w": round(power, 1), "energy_kwh": round(self.energy_kwh, 4), "voltage_v": round(voltage, 1),
                "current_a": round(power / voltage, 3)}


class GpsTracker(_Base):
    """A vehicle: heading random walk, speed with stops, position integrated from them; battery drain."""

    def __init__(self, device_id: str, rng: random.Random) -> None:
        super().__init__(device_id, rng)
        self.lat, self.lon = 52.52 + rng.uniform(-0.2, 0.2), 13.40 + rng.uniform(-0.3, 0.3)
        self.heading, self.speed, self.battery = rng.uniform(0, 360), 0.0, rng.uniform(60, 100)
        self.last_t: float | None = None

    def sample(self, t: float) -> dict[str, Any]:
        dt = 1.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        self.heading = (self.heading + self.rng.gauss(0, 8)) % 360
        target = 0.0 if self.rng.random() < 0.05 else 14.0
        self.speed = max(0.0, self.speed + 0.3 * (target - self.speed) + self.rng.gauss(0, 1))
        meters = self.speed * dt
        self.lat += meters * math.cos(math.radians(self.heading)) / 111_320
        self.lon += meters * math.sin(math.radians(self.heading)) / (111_320 * math.cos(math.radians(self.lat)))
        self.battery = max(0.0, self.battery - 0.001 * dt)
        return {"gps": {"lat": round(self.lat, 6), "lon": round(self.lon, 6)}, "speed_mps": round(self.speed, 2),
                "heading": round(self.heading, 1), "battery": round(self.battery, 2)}


class IndustrialSensor(_Base):
    """Vibration and temperature of a machine, with outliers, stuck-sensor faults and dropouts.

    ``sample`` returns ``{}`` during a dropout: the engine then sends nothing (a gap in time, not in
    sequence numbers, which count messages actually sent).
    """

    def __init__(self, device_id: str, rng: random.Random, outlier_p: float = 0.01, fault_p: float = 0.002,
                 dropout_p: float = 0.01) -> None:
        super().__init__(device_id, rng)
        self.temp, self.vibration = rng.uniform(40, 60), rng.uniform(1.0, 3.0)
        self.outlier_p, self.fault_p, self.dropout_p = outlier_p, fault_p, dropout_p
        self.stuck_for, self.drop_for = 0, 0
        self.stuck_value: float | None = None

    def sample(self, t: float) -> dict[str, Any]:
        if self.drop_for > 0:
            self.drop_for -= 1
            return {}
        if self.rng.random() < self.dropout_p:
            self.drop_for = self.rng.randint(2, 10)
            return {}
        self.temp += 0.02 * (55 - self.temp) + self.rng.gauss(0, 0.2)
        self.vibration = max(0.1, self.vibration + 0.05 * (2.0 - self.vibration) + self.rng.gauss(0, 0.1))
        vibration, status = self.vibration, "ok"
        if self.stuck_for > 0:
            self.stuck_for -= 1
            vibration, status = self.stuck_value or vibration, "fault:stuck"
        elif self.rng.random() < self.fault_p:
            self.stuck_for, self.stuck_value = self.rng.randint(5, 30), vibration
            status = "fault:stuck"
        if self.rng.random() < self.outlier_p:
            vibration *= self.rng.uniform(5, 12)
            status = "outlier"
        return {"temperature": round(self.temp, 2), "vibration_mm_s": round(vibration, 3), "status": status,
                "rpm": int(1480 + self.rng.gauss(0, 5))}


BUILTIN: dict[str, type[_Base]] = {
    "thermostat": Thermostat, "smart_meter": SmartMeter, "gps_tracker": GpsTracker,
    "industrial_sensor": IndustrialSensor,
}


class _FunctionProfile(_Base):
    """Wraps ``fn(device_id, t, rng, state) -> dict``; ``state`` is the device's own dict."""

    def __init__(self, device_id: str, rng: random.Random, fn: Callable[..., dict[str, Any]]) -> None:
        super().__init__(device_id, rng)
        self.fn = fn
        self.state: dict[str, Any] = {}

    def sample(self, t: float) -> dict[str, Any]:
        return self.fn(self.device_id, t, self.rng, self.state)


ProfileSpec = str | type | Callable[..., dict[str, Any]]


def make_profile(spec: ProfileSpec, device_id: str, seed: int) -> Profile:
    """A profile instance for one device: a built-in name, a class ``(device_id, rng)`` or a function."""
    rng = random.Random(f"{seed}:{device_id}")
    if isinstance(spec, str):
        if spec not in BUILTIN:
            from ..errors import ConfigError

            raise ConfigError(f"unknown device profile {spec!r}", hint=f"built-in profiles: {', '.join(BUILTIN)}")
        return BUILTIN[spec](device_id, rng)
    if inspect.isclass(spec):
        factory: Any = spec
        instance: Any = factory(device_id, rng)
        if not hasattr(instance, "apply"):
            instance.apply = lambda command: dict(command)
        return cast(Profile, instance)
    return _FunctionProfile(device_id, rng, spec)


PROFILES = BUILTIN
