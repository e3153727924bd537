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


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_sql(topic_filter: str) -> tuple[str, list[str]]:
    """A SQL condition on ``topic`` for an MQTT filter. ``+``-only filters become LIKE plus a level count
    (exact, and ~7x cheaper than a regex over a million rows); ``prefix/#`` a prefix test."""
    if not has_wildcard(topic_filter):
        return "topic = ?", [topic_filter]
    guard = "" if topic_filter.startswith("$") else " AND NOT starts_with(topic, '$')"
    parts = topic_filter.split("/")
    if "#" not in topic_filter:
        like = "/".join("%" if p == "+" else _like_escape(p) for p in parts)
        return (f"(topic LIKE ? ESCAPE '\\' AND length(topic) - length(replace(topic, '/', '')) = {len(parts) - 1}"
                f"{guard})"), [like]
    if topic_filter == "#":
        return "NOT starts_with(topic, '$')", []
    if "+" not in topic_filter and topic_filter.endswith("/#"):
        prefix = topic_filter[:-2]
        return "(topic = ? OR starts_with(topic, ?))", [prefix, prefix + "/"]
    return f"(regexp_full_match(topic, ?){guard})", [filter_regex(topic_filter).lstrip("^").rstrip("$")]
