"""What the recorder keeps of a message, and the numeric fields it flattens out of JSON payloads."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_FIELDS = 64  # per message: a huge JSON document does not become thousands of series
MAX_DEPTH = 6


@dataclass(frozen=True)
class Record:
    seq: int
    ts_ns: int  # when the recorder received it (the broker hands it over at once; the closest to broker time)
    topic: str
    payload: bytes
    qos: int
    retain: bool
    props: str | None  # MQTT 5 properties as JSON, user properties as [[key, value], ...]
    client_id: str | None = None  # mosquitto and EMQX do not tell subscribers who published

    @property
    def device(self) -> str | None:
        return device_of(self.topic)


def device_of(topic: str) -> str | None:
    """The device a topic belongs to: ``devices/<id>/...`` or ``$aws/things/<id>/...``."""
    parts = topic.split("/", 3)
    if len(parts) >= 3 and parts[0] == "devices":
        return parts[1]
    if len(parts) >= 3 and parts[0] == "$aws" and parts[1] == "things":
        return parts[2]
    return None


def flatten(payload: bytes) -> list[tuple[str, float]]:
    """Numeric and boolean leaves of a JSON object payload as (``a.b``, value); [] for anything else."""
    if not payload or payload[:1] not in (b"{", b" ", b"\n", b"\t"):
        return []
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return []
    if not isinstance(doc, dict):
        return []
    out: list[tuple[str, float]] = []
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack and len(out) < MAX_FIELDS:
        prefix, node, depth = stack.pop()
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, bool):
                out.append((name, 1.0 if value else 0.0))
            elif isinstance(value, (int, float)):
                number = float(value)
                if math.isfinite(number):
                    out.append((name, number))
            elif isinstance(value, dict) and depth < MAX_DEPTH:
                stack.append((name, value, depth + 1))
            if len(out) >= MAX_FIELDS:
                break
    return out
