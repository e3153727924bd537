"""Value semantics shared by the evaluator and the functions: undefined, loose equality, JSON."""

from __future__ import annotations

import json
from typing import Any


class _Undefined:
    """EMQX's ``undefined`` atom: a missing value. ``undefined = undefined`` is true."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()


class _Absent:
    """A CASE without ELSE that matched no branch: its alias is left out of the output."""

    def __repr__(self) -> str:
        return "absent"


ABSENT: Any = _Absent()


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def to_number(v: Any) -> int | float | None:
    """A number from a number or a numeric string, else None."""
    if is_number(v):
        return v  # type: ignore[no-any-return]
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return None
    return None


def loose_equal(a: Any, b: Any) -> bool:
    """``=`` in rule SQL: numbers compare by value, a numeric string equals its number."""
    if a is UNDEFINED or b is UNDEFINED:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, bool) and isinstance(b, bool):
            return a == b
        other = b if isinstance(a, bool) else a
        flag = a if isinstance(a, bool) else b
        return isinstance(other, str) and other == ("true" if flag else "false")
    if is_number(a) and is_number(b):
        return bool(a == b)
    if is_number(a) or is_number(b):
        na, nb = to_number(a), to_number(b)
        return na is not None and nb is not None and na == nb
    return bool(a == b)


def try_json(text: Any) -> Any:
    """Decoded JSON of a string (or bytes), or UNDEFINED when it is not JSON."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            return UNDEFINED
    if not isinstance(text, str):
        return UNDEFINED
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return UNDEFINED


def to_jsonable(value: Any) -> Any:
    """What a value becomes in an output document: undefined renders as the string "undefined"."""
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items() if v is not ABSENT}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


def to_text(value: Any) -> str:
    """String form used by str() and templates: JSON for maps and lists, plain text otherwise."""
    if isinstance(value, str):
        return value
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, (dict, list)):
        return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def format_float(x: float, decimals: int = 10) -> str:
    """EMQX prints floats with up to 10 decimals, trailing zeros trimmed (``1.5`` not ``1.5000000000``)."""
    text = f"{x:.{decimals}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
