"""MQTT topic filters as regular expressions (for history queries)."""

from __future__ import annotations

import re


def filter_regex(topic_filter: str) -> str:
    """An anchored regex matching the topics ``topic_filter`` matches (``#`` includes the parent level)."""
    parts = topic_filter.split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        if part == "#" and i == len(parts) - 1:
            if out:
                return "^" + "/".join(out) + "(/.*)?$"
            return "^[^$].*$" if not topic_filter.startswith("$") else "^.*$"
        out.append("[^/]+" if part == "+" else re.escape(part))
    prefix = "^" if topic_filter.startswith("$") or parts[0] not in ("+",) else "^(?!\\$)"
    return prefix + "/".join(out) + "$"


def has_wildcard(topic: str) -> bool:
    return "+" in topic or "#" in topic
