"""Device fleets and load: simulated devices, reactive scenarios, benchmarks with percentiles.

Names load on first use, so the services process can import one module of this package (the sequence
checker) without the benchmark and notebook code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "BenchResult": "._bench", "run_bench": "._bench", "Fleet": "._client", "FleetClient": "._client",
    "Monitor": "._client", "MultiFleet": "._client", "FleetSpec": "._engine", "PROFILES": "._profiles",
    "Rate": "._schedule", "SeqTracker": "._stats", "binary_stamp": "._stats", "read_stamp": "._stats",
    "Target": "._target", "parse_url": "._target",
}

if TYPE_CHECKING:
    from ._bench import BenchResult, run_bench
    from ._client import Fleet, FleetClient, Monitor, MultiFleet
    from ._engine import FleetSpec
    from ._profiles import PROFILES
    from ._schedule import Rate
    from ._stats import SeqTracker, binary_stamp, read_stamp
    from ._target import Target, parse_url

__all__ = ["PROFILES", "BenchResult", "Fleet", "FleetClient", "FleetSpec", "Monitor", "MultiFleet", "Rate", "SeqTracker",
           "Target", "binary_stamp", "parse_url", "read_stamp", "run_bench"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
