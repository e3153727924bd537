"""Device fleets and load: simulated devices, reactive scenarios, benchmarks with percentiles."""

from ._bench import BenchResult, run_bench
from ._client import Fleet, FleetClient, Monitor, MultiFleet
from ._engine import FleetSpec
from ._profiles import BUILTIN as PROFILES
from ._schedule import Rate
from ._stats import SeqTracker, binary_stamp, read_stamp
from ._target import Target, parse_url

__all__ = [
           "PROFILES",
           "BenchResult",
           "Fleet",
           "FleetClient",
           "FleetSpec",
           "Monitor",
           "MultiFleet",
           "Rate",
           "SeqTracker",
           "Target",
           "binary_stamp",
           "parse_url",
           "read_stamp",
           "run_bench",
]
