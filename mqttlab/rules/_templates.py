"""``${var}`` templates of rule actions: paths into the rule's output; a missing variable renders ``undefined``."""

from __future__ import annotations

import re
from typing import Any

from ._values import UNDEFINED, to_text, try_json

_VAR = re.compile(r"\$\{([^}]*)\}")
_SEG = re.compile(r"'([^']*)'|([^.\[\]]+)|\[(-?\d+)\]")


def lookup(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for quoted, key, index in _SEG.findall(path.strip()):
        if isinstance(value, str):
            value = try_json(value)
        if index:
            if not isinstance(value, list):
                return UNDEFINED
            i = int(index)
            if not (1 <= i <= len(value) or -len(value) <= i <= -1):
                return UNDEFINED
            value = value[i - 1] if i > 0 else value[i]
            continue
        name = quoted or key
        if not isinstance(value, dict) or name not in value:
            return UNDEFINED
        value = value[name]
    return value


def render(template: str, doc: dict[str, Any]) -> str:
    """Substitute every ``${path}``; maps and lists render as JSON."""
    return _VAR.sub(lambda m: to_text(lookup(doc, m.group(1))), template)


def render_value(template: Any, doc: dict[str, Any]) -> Any:
    """A template that is exactly ``${path}`` keeps the value's type (qos stays a number)."""
    if isinstance(template, str):
        m = _VAR.fullmatch(template.strip())
        if m:
            return lookup(doc, m.group(1))
        return render(template, doc)
    return template
