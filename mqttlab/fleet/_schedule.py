"""When each message is due: fixed interval without drift, Poisson arrivals, or bursts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError

Pattern = Literal["fixed", "poisson", "burst"]


@dataclass(frozen=True)
class Rate:
    """Messages per second for one device, and how they are spread in time.

    ``burst``: ``burst_size`` messages back to back, then a pause so the average stays ``per_second``.
    """

    per_second: float = 1.0
    pattern: Pattern = "fixed"
    burst_size: int = 10

    def __post_init__(self) -> None:
        if self.per_second <= 0:
            raise ConfigError(f"rate must be positive, got {self.per_second}", hint="messages per second per device, e.g. 0.5")
        if self.pattern not in ("fixed", "poisson", "burst"):
            raise ConfigError(f"unknown rate pattern {self.pattern!r}", hint="fixed, poisson or burst")

    def offsets(self, rng: random.Random, phase: float = 0.0) -> Iterator[float]:
        """Due times in seconds from the start. Fixed times are computed from the index, so they never drift."""
        interval = 1.0 / self.per_second
        if self.pattern == "fixed":
            k = 0
            while True:
                yield phase + k * interval
                k += 1
        elif self.pattern == "poisson":
            t = phase
            while True:
                t += rng.expovariate(self.per_second)
                yield t
        else:
            k = 0
            period = interval * self.burst_size
            while True:
                base = phase + k * period
                for _ in range(self.burst_size):
                    yield base
                k += 1
