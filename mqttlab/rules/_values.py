"""Value semantics shared by the evaluator and the functions: undefined, loose equality, JSON."""

from __future__ import annotations

import json
import re
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


_STRICT_INT = re.compile(r"^[+-]?\d+$")
_STRICT_FLOAT = re.compile(r"^[+-]?\d+\.\d+(?:[eE][+-]?\d+)?$")


def parse_number(text: str) -> int | float | None:
    """Erlang's strict syntax: an integer, or a float with digits on both sides of the point."""
    if _STRICT_INT.match(text):
        return int(text)
    if _STRICT_FLOAT.match(text):
        return float(text)
    return None


def _rank(v: Any) -> int:
    """Erlang's cross-type order: number < atom (booleans, null) < map < list < string."""
    if is_number(v):
        return 0
    if isinstance(v, bool) or v is None:
        return 1
    if isinstance(v, dict):
        return 3
    if isinstance(v, list):
        return 4
    return 5


def _atom_text(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return None


def compare(op: str, a: Any, b: Any) -> bool:
    """``= != < > <= >=`` with EMQX's rules: undefined, numeric strings, atoms as text, then term order."""
    if a is UNDEFINED or b is UNDEFINED:
        if a is UNDEFINED and b is UNDEFINED:
            return op in ("=", "<=", ">=")
        return False  # one side missing: false for every operator, != included
    if (is_number(a) and isinstance(b, str)) or (isinstance(a, str) and is_number(b)):
        text = b if isinstance(b, str) else a
        number = parse_number(text)
        if number is None:
            raise ValueError(f"badarg: cannot compare {a!r} with {b!r}")
        a, b = (a, number) if isinstance(b, str) else (number, b)
    elif isinstance(a, str) and _atom_text(b) is not None:
        b = _atom_text(b)
    elif isinstance(b, str) and _atom_text(a) is not None:
        a = _atom_text(a)
    if op == "=":
        return _term_eq(a, b)
    if op == "!=":
        return not _term_eq(a, b)
    ra, rb = _rank(a), _rank(b)
    left: Any
    right: Any
    if ra != rb:
        left, right = ra, rb
    elif ra == 1:
        left, right = _atom_text(a) or "", _atom_text(b) or ""
    elif ra in (3, 4):
        left, right = json.dumps(to_jsonable(a), sort_keys=True), json.dumps(to_jsonable(b), sort_keys=True)
    else:
        left, right = a, b
    return bool({"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op])


def _term_eq(a: Any, b: Any) -> bool:
    """Erlang ``==``: numbers by value (1 == 1.0), everything else by type and value."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    return exact_equal(a, b)


def exact_equal(a: Any, b: Any) -> bool:
    """Erlang ``=:=`` (IN, CASE x WHEN v, contains): types must agree, so 2 is not 2.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exact_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(exact_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def loose_equal(a: Any, b: Any) -> bool:
    return compare("=", a, b)


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
        return {str(k): to_jsonable(v) for k, v in value.items()}
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
