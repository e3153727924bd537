"""Times for history queries: datetimes, pandas Timestamps, epoch numbers, ISO text or relative ``-15m``."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from ..errors import ConfigError

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$")
_UNIT_NS = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
            "d": 86_400_000_000_000, "w": 604_800_000_000_000}


def to_ns(value: Any, *, now_ns: int | None = None) -> int | None:
    """Epoch nanoseconds of ``value``; None stays None (an open end)."""
    if value is None:
        return None
    now = now_ns if now_ns is not None else time.time_ns()
    if isinstance(value, str):
        text = value.strip()
        if text == "now":
            return now
        if text.lstrip("-").isdigit():  # epoch numbers as text (the HTTP API's form)
            number = int(text)
            return number if abs(number) > 1e15 else number * 1_000_000_000
        m = _RELATIVE.match(text)
        if m:
            return now - int(float(m.group(1)) * _UNIT_NS[m.group(2)])
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"cannot read the time {text!r}",
                              hint='use a datetime, a pandas Timestamp, ISO text, "now" or "-15m" / "-2h" / "-1d"') from None
    if hasattr(value, "value") and hasattr(value, "tz_localize"):  # a pandas Timestamp
        ts = value if value.tzinfo is not None else value.tz_localize("UTC")
        return int(ts.value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
        return int(moment.timestamp() * 1_000_000_000)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if value > 1e15 else int(value * 1_000_000_000)  # ns as given, else seconds
    raise ConfigError(f"cannot read the time {value!r}", hint="a datetime, a pandas Timestamp, ISO text or '-15m'")


def to_interval_s(every: str | float | int) -> float:
    """``every`` for series buckets: seconds, or text such as ``"10s"``, ``"1m"``, ``"500ms"``."""
    if isinstance(every, (int, float)) and not isinstance(every, bool):
        if every <= 0:
            raise ConfigError("every must be positive", hint='e.g. every="10s"')
        return float(every)
    m = re.match(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$", str(every).strip())
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"cannot read the interval {every!r}", hint='use "500ms", "10s", "1m", "1h" or seconds')
    return float(m.group(1)) * _UNIT_NS[m.group(2)] / 1e9
