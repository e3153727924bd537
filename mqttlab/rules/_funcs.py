"""The rule SQL function library: math, types and casts, strings, maps, arrays.

Codecs, hashing, compression, bits and time live in ``_funcs_codec``. Every function takes already
evaluated arguments; a bad argument raises and the evaluator turns it into a runtime error (400).
"""

from __future__ import annotations

import json
import math
import random as _random
from collections.abc import Callable
from typing import Any, TypeVar

import regex

from ._errors import RuleRuntimeError
from ._values import UNDEFINED, format_float, is_number, to_jsonable, to_number, to_text, try_json

REGEX_TIMEOUT_S = 0.05  # an untrusted regex cannot hold the rule engine for longer than this
MAX_TEXT = 1 << 20  # results longer than 1 MiB are refused (pad, sprintf, concat of huge inputs)

F: dict[str, Callable[..., Any]] = {}


FnT = TypeVar("FnT", bound=Callable[..., Any])


def fn(*names: str) -> Callable[[FnT], FnT]:
    def register(func: FnT) -> FnT:
        for name in names or (func.__name__.rstrip("_"),):
            F[name] = func
        return func
    return register


def _num(x: Any, name: str = "argument") -> int | float:
    n = to_number(x) if not isinstance(x, bool) else None
    if n is None:
        raise RuleRuntimeError(f"{name} must be a number, got {x!r}")
    return n


def _int(x: Any) -> int:
    n = _num(x)
    if isinstance(n, float):
        if not n.is_integer():
            raise RuleRuntimeError(f"expected an integer, got {x!r}")
        n = int(n)
    return n


def _str(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", "replace")
    return to_text(x)


def _guard(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise RuleRuntimeError(f"result longer than {MAX_TEXT} characters")
    return text


# ----------------------------------------------------------------------------- math
_MATH: dict[str, Callable[[Any], Any]] = {"abs": abs, "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "exp": math.exp,
                  "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
                  "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh, "asinh": math.asinh,
                  "acosh": math.acosh, "atanh": math.atanh, "log": math.log, "log10": math.log10,
                  "log2": math.log2}
for _name, _f in _MATH.items():
    F[_name] = (lambda f: lambda x: f(_num(x)))(_f)


@fn("round")
def round_(x: Any) -> int:
    n = _num(x)
    return math.floor(n + 0.5) if n >= 0 else -math.floor(-n + 0.5)  # Erlang rounds half away from zero


@fn("power")
def power(x: Any, y: Any) -> float:
    return math.pow(_num(x), _num(y))


@fn("fmod")
def fmod(x: Any, y: Any) -> float:
    return math.fmod(_num(x), _num(y))


@fn("random")
def random() -> float:
    return _random.random()


# ----------------------------------------------------------------------------- type tests
F.update({
    "is_null": lambda x: x is UNDEFINED or x is None,
    "is_not_null": lambda x: not (x is UNDEFINED or x is None),
    "is_null_var": lambda x: x is UNDEFINED or x is None,
    "is_not_null_var": lambda x: not (x is UNDEFINED or x is None),
    "is_str": lambda x: isinstance(x, str),
    "is_bool": lambda x: isinstance(x, bool),
    "is_int": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "is_float": lambda x: isinstance(x, float),
    "is_num": is_number,
    "is_map": lambda x: isinstance(x, dict) or (isinstance(x, str) and isinstance(try_json(x), dict)),
    "is_array": lambda x: isinstance(x, list) or (isinstance(x, str) and isinstance(try_json(x), list)),
})


# ----------------------------------------------------------------------------- casts
@fn("str", "str_utf8", "string")
def str_(x: Any) -> str:
    return _str(x)


@fn("int")
def int_(x: Any) -> int:
    if isinstance(x, bool):
        return 1 if x else 0
    if isinstance(x, float):
        return round_(x)
    if isinstance(x, int):
        return x
    if isinstance(x, str):
        try:
            return int(x)
        except ValueError:
            try:
                return round_(float(x))
            except ValueError:
                raise RuleRuntimeError(f"cannot convert {x!r} to an integer") from None
    raise RuleRuntimeError(f"cannot convert {x!r} to an integer")


@fn("float")
def float_(x: Any, decimals: Any = None) -> float:
    if isinstance(x, bool):
        raise RuleRuntimeError(f"cannot convert {x!r} to a float")
    n = to_number(x)
    if n is None:
        raise RuleRuntimeError(f"cannot convert {x!r} to a float")
    value = float(n)
    if decimals is not None:
        d = _int(decimals)
        if not 0 <= d <= 253:
            raise RuleRuntimeError("decimals must be between 0 and 253")
        value = float(f"{value:.{d}f}")
    return value


@fn("float2str")
def float2str(x: Any, precision: Any) -> str:
    return format_float(float(_num(x)), _int(precision))


@fn("bool")
def bool_(x: Any) -> bool:
    if isinstance(x, bool):
        return x
    if x in (1, "true", "1"):
        return True
    if x in (0, "false", "0"):
        return False
    raise RuleRuntimeError(f"cannot convert {x!r} to a boolean")


@fn("map")
def map_(x: Any) -> dict[str, Any]:
    if isinstance(x, dict):
        return x
    decoded = try_json(x)
    if isinstance(decoded, dict):
        return decoded
    raise RuleRuntimeError(f"cannot convert {x!r} to a map")


# ----------------------------------------------------------------------------- strings
F.update({
    "lower": lambda s: _str(s).lower(),
    "upper": lambda s: _str(s).upper(),
    "trim": lambda s: _str(s).strip(),
    "ltrim": lambda s: _str(s).lstrip(),
    "rtrim": lambda s: _str(s).rstrip(),
    "reverse": lambda s: _str(s)[::-1],
    "strlen": lambda s: len(_str(s)),
    "ascii": lambda s: ord(_str(s)[0]),
    "unescape": lambda s: _str(s).encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8"),
})


@fn("substr")
def substr(s: Any, start: Any, length: Any = None) -> str:
    """0-based start: ``substr('abcdef', 2)`` is ``'cdef'``."""
    text, i = _str(s), _int(start)
    if i < 0:
        raise RuleRuntimeError("substr start must be >= 0")
    return text[i:] if length is None else text[i: i + _int(length)]


@fn("substring")
def substring(s: Any, start: Any, end: Any = None) -> str:
    text = _str(s)
    return text[_int(start):] if end is None else text[_int(start): _int(end)]


@fn("split")
def split(s: Any, sep: Any, which: Any = None) -> list[str]:
    """Split on every ``sep``, dropping empty parts; ``'leading'``/``'trailing'`` split once."""
    text, separator = _str(s), _str(sep)
    if not separator:
        raise RuleRuntimeError("split separator must not be empty")
    if which == "leading":
        parts = text.split(separator, 1)
    elif which == "trailing":
        parts = text.rsplit(separator, 1)
    elif which is None:
        parts = text.split(separator)
    else:
        raise RuleRuntimeError("split's third argument is 'leading' or 'trailing'")
    return [p for p in parts if p]


@fn("tokens")
def tokens(s: Any, chars: Any, nocrlf: Any = None) -> list[str]:
    seps = set(_str(chars)) | ({"\r", "\n"} if nocrlf == "nocrlf" else set())
    out: list[str] = []
    cur: list[str] = []
    for ch in _str(s):
        if ch in seps:
            if cur:
                out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


@fn("concat")
def concat(*parts: Any) -> str:
    if len(parts) < 2:
        raise RuleRuntimeError("concat needs at least two arguments")
    return _guard("".join(_str(p) for p in parts))


@fn("pad")
def pad(s: Any, length: Any, where: Any = "trailing", char: Any = " ") -> str:
    text, n, c = _str(s), _int(length), _str(char)
    if n > MAX_TEXT:
        raise RuleRuntimeError("pad length too large")
    if len(c) != 1:
        raise RuleRuntimeError("pad character must be one character")
    missing = max(0, n - len(text))
    if where == "trailing":
        return text + c * missing
    if where == "leading":
        return c * missing + text
    if where == "both":
        left = missing // 2
        return c * left + text + c * (missing - left)
    raise RuleRuntimeError("pad position is 'leading', 'trailing' or 'both'")


@fn("replace")
def replace(s: Any, old: Any, new: Any, where: Any = "all") -> str:
    text, a, b = _str(s), _str(old), _str(new)
    if where == "all":
        return _guard(text.replace(a, b)) if a else text
    if where == "leading":
        return text.replace(a, b, 1) if a else text
    if where == "trailing":
        i = text.rfind(a)
        return text if i < 0 or not a else text[:i] + b + text[i + len(a):]
    raise RuleRuntimeError("replace position is 'all', 'leading' or 'trailing'")


@fn("find")
def find(s: Any, sub: Any, where: Any = "leading") -> str:
    """The rest of ``s`` from the first (or last, ``'trailing'``) occurrence of ``sub``; ``''`` if none."""
    text, needle = _str(s), _str(sub)
    i = text.find(needle) if where == "leading" else text.rfind(needle)
    return "" if i < 0 else text[i:]


def _compile(pattern: Any) -> Any:
    try:
        return regex.compile(_str(pattern))
    except regex.error as exc:
        raise RuleRuntimeError(f"invalid regular expression {pattern!r}: {exc}") from None


def _regex_call(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except TimeoutError:
        raise RuleRuntimeError(f"regular expression took longer than {REGEX_TIMEOUT_S * 1000:.0f} ms",
                               hint="simplify the pattern (nested quantifiers backtrack exponentially)") from None


@fn("regex_match")
def regex_match(s: Any, pattern: Any) -> bool:
    rx = _compile(pattern)
    return _regex_call(lambda: rx.search(_str(s), timeout=REGEX_TIMEOUT_S)) is not None


@fn("regex_replace")
def regex_replace(s: Any, pattern: Any, repl: Any) -> str:
    rx = _compile(pattern)
    replacement = regex.sub(r"\\(\d)", r"\\g<\1>", _str(repl))
    return _guard(_regex_call(lambda: rx.sub(replacement, _str(s), timeout=REGEX_TIMEOUT_S)))


@fn("regex_extract")
def regex_extract(s: Any, pattern: Any) -> list[str]:
    rx = _compile(pattern)
    m = _regex_call(lambda: rx.search(_str(s), timeout=REGEX_TIMEOUT_S))
    if m is None:
        return []
    return [g for g in m.groups() if g is not None] if m.groups() else [m.group(0)]


@fn("join_to_string")
def join_to_string(sep: Any, items: Any = None) -> str:
    if items is None:
        sep, items = ",", sep
    if not isinstance(items, list):
        raise RuleRuntimeError("join_to_string needs a list")
    return _guard(_str(sep).join(_str(i) for i in items))


@fn("sprintf")
def sprintf(fmt: Any, *args: Any) -> str:
    """Erlang io_lib:format directives: ~s ~p ~w ~b ~B ~e ~f ~g ~c ~n ~~."""
    text, out, it = _str(fmt), [], iter(args)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "~" or i + 1 >= len(text):
            out.append(ch)
            i += 1
            continue
        d = text[i + 1]
        i += 2
        if d == "~":
            out.append("~")
            continue
        if d == "n":
            out.append("\n")
            continue
        try:
            arg = next(it)
        except StopIteration:
            raise RuleRuntimeError("sprintf: fewer arguments than directives") from None
        if d == "s":
            out.append(_str(arg))
        elif d in ("p", "w"):
            out.append(json.dumps(to_jsonable(arg)) if isinstance(arg, (dict, list)) else
                       (f"<<\"{arg}\">>" if isinstance(arg, str) else _str(arg)))
        elif d in ("b", "B"):
            out.append(str(_int(arg)))
        elif d == "c":
            out.append(chr(_int(arg)))
        elif d in ("f", "e", "g"):
            out.append(f"{float(_num(arg)):.6{d}}")
        else:
            raise RuleRuntimeError(f"sprintf: unsupported directive ~{d}")
    return _guard("".join(out))


# ----------------------------------------------------------------------------- maps
def _as_map(m: Any) -> dict[str, Any]:
    if isinstance(m, dict):
        return m
    decoded = try_json(m)
    if isinstance(decoded, dict):
        return decoded
    raise RuleRuntimeError(f"expected a map, got {m!r}")


@fn("map_get")
def map_get(key: Any, m: Any, default: Any = UNDEFINED) -> Any:
    """``map_get('a.b', m)`` follows a dotted path."""
    value: Any = _as_map(m)
    for part in _str(key).split("."):
        if isinstance(value, str):
            value = try_json(value)
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


@fn("mget")
def mget(key: Any, m: Any, default: Any = UNDEFINED) -> Any:
    return _as_map(m).get(_str(key), default)


@fn("map_put")
def map_put(key: Any, value: Any, m: Any) -> dict[str, Any]:
    out = dict(_as_map(m))
    parts = _str(key).split(".")
    cur = out
    for part in parts[:-1]:
        nxt = cur.get(part)
        nxt = dict(nxt) if isinstance(nxt, dict) else {}
        cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value
    return out


@fn("mput")
def mput(key: Any, value: Any, m: Any) -> dict[str, Any]:
    return {**_as_map(m), _str(key): value}


F.update({
    "map_new": lambda: {},
    "map_keys": lambda m: list(_as_map(m).keys()),
    "map_values": lambda m: list(_as_map(m).values()),
    "map_to_entries": lambda m: [{"key": k, "value": v} for k, v in _as_map(m).items()],
    "map_size": lambda m: len(_as_map(m)),
})


# ----------------------------------------------------------------------------- arrays
def _list(x: Any) -> list[Any]:
    if isinstance(x, list):
        return x
    decoded = try_json(x)
    if isinstance(decoded, list):
        return decoded
    raise RuleRuntimeError(f"expected an array, got {x!r}")


@fn("nth")
def nth(n: Any, items: Any) -> Any:
    lst, i = _list(items), _int(n)
    if not 1 <= i <= len(lst):
        raise RuleRuntimeError(f"nth: index {i} out of range 1..{len(lst)}")
    return lst[i - 1]


@fn("sublist")
def sublist(a: Any, b: Any, c: Any = None) -> list[Any]:
    """``sublist(len, list)`` or ``sublist(start, len, list)``, 1-based."""
    if c is None:
        return _list(b)[: _int(a)]
    start = _int(a)
    if start < 1:
        raise RuleRuntimeError("sublist start is 1-based")
    return _list(c)[start - 1: start - 1 + _int(b)]


F.update({
    "length": lambda x: len(_list(x)) if not isinstance(x, str) or isinstance(try_json(x), list) else len(x),
    "first": lambda x: _list(x)[0] if _list(x) else UNDEFINED,
    "last": lambda x: _list(x)[-1] if _list(x) else UNDEFINED,
    "contains": lambda item, items: any(item == i for i in _list(items)),
})
