"""MQTT topic filter matching (``=~`` and FROM)."""

from __future__ import annotations


def topic_matches(topic: str, topic_filter: str) -> bool:
    """True when ``topic`` matches ``topic_filter`` (``+`` one level, ``#`` the rest; ``$`` topics need a ``$`` filter)."""
    if topic.startswith("$") and not topic_filter.startswith("$"):
        return False
    t_parts, f_parts = topic.split("/"), topic_filter.split("/")
    for i, f in enumerate(f_parts):
        if f == "#":
            return i == len(f_parts) - 1
        if i >= len(t_parts):
            return False
        if f != "+" and f != t_parts[i]:
            return False
    return len(t_parts) == len(f_parts)


def is_filter_valid(topic_filter: str) -> bool:
    if not topic_filter or len(topic_filter.encode()) > 65535 or "\x00" in topic_filter:
        return False
    parts = topic_filter.split("/")
    for i, part in enumerate(parts):
        if "#" in part and (part != "#" or i != len(parts) - 1):
            return False
        if "+" in part and part != "+":
            return False
    return True
