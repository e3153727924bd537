"""Shared output for benchmarks: a JSON summary line and a short human table."""

from __future__ import annotations

import json
import platform
import statistics
from typing import Any

import psutil


def machine() -> dict[str, Any]:
    return {"cpus": psutil.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def summarize(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "min": min(values), "p50": statistics.median(values), "p90": pct(values, 90),
            "max": max(values), "mean": statistics.fmean(values)}


def report(name: str, summary: dict[str, Any], rows: list[tuple[str, str, str]]) -> None:
    """Print the table (metric, value, target) and then the JSON summary."""
    width = max(len(r[0]) for r in rows)
    print(f"\n{name}")  # noqa: T201
    for metric, value, target in rows:
        print(f"  {metric:<{width}}  {value:>14}  {target}")  # noqa: T201
    print(json.dumps({"benchmark": name, "machine": machine(), **summary}, indent=None))  # noqa: T201
