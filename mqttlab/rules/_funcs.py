"""The rule SQL function library: math, null handling, types and casts, strings, maps, arrays.

Semantics follow EMQX 5.8's ``emqx_rule_funcs`` / ``emqx_variform_bif`` / ``emqx_utils_conv``
(read from the source and its test suites, not the docs where they disagree: e.g. ``abs`` takes
integers only, ``int(-3.14)`` is -4, string functions refuse non-strings). Codecs, hashing,
compression, bits and time live in ``_funcs_codec``. A bad argument raises ``TypeError`` or
``ValueError``; the evaluator reports it as EMQX's ``bad_sql_function_argument``.
"""

from __future__ import annotations

import json
import math
import random as _random
from collections.abc import Callable
from typing import Any, TypeVar

import regex

from ._errors import RuleRuntimeError
from ._values import UNDEFINED, exact_equal, format_float, is_number, parse_number, to_text, try_json

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


def _num(x: Any) -> int | float:
    if not is_number(x):
        raise TypeError(f"expected a number, got {x!r}")
    return x  # type: ignore[no-any-return]


def _int(x: Any) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise TypeError(f"expected an integer, got {x!r}")
    return x


def _s(x: Any) -> str:
    """String arguments must be strings (EMQX guards with is_binary)."""
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", "replace")
    raise TypeError(f"expected a string, got {to_text(x)!r}")


def _str(x: Any) -> str:
    """``str()`` conversion of any value (used where EMQX converts rather than refuses)."""
    if x is None:
        return "null"
    return _s(x) if isinstance(x, (str, bytes, bytearray)) else to_text(x)


def _guard(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise RuleRuntimeError(f"result longer than {MAX_TEXT} characters", reason="result_too_large")
    return text


# ----------------------------------------------------------------------------- math
_MATH: dict[str, Callable[[Any], Any]] = {
    "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "exp": math.exp, "sin": math.sin, "cos": math.cos,
    "tan": math.tan, "asin": math.asin, "acos": math.acos, "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh,
    "tanh": math.tanh, "asinh": math.asinh, "acosh": math.acosh, "atanh": math.atanh, "log": math.log,
    "log10": math.log10, "log2": math.log2}
for _name, _f in _MATH.items():
    F[_name] = (lambda f: lambda x: f(_num(x)))(_f)


@fn("abs")
def abs_(x: Any) -> int:
    return abs(_int(x))  # EMQX's abs/1 has an integer guard only


@fn("round")
def round_(x: Any) -> int:
    n = _num(x)
    return math.floor(n + 0.5) if n >= 0 else -math.floor(-n + 0.5)  # Erlang: half away from zero


F.update({
    "power": lambda x, y: math.pow(_num(x), _num(y)),
    "fmod": lambda x, y: math.fmod(_num(x), _num(y)),
    "random": lambda: _random.random(),
})


# ----------------------------------------------------------------------------- null handling
def _coalesce(items: list[Any], skip_empty: bool) -> Any:
    for item in items:
        if item is not UNDEFINED and not (skip_empty and item == ""):
            return item
    return UNDEFINED


F.update({
    "null": lambda: UNDEFINED,
    "coalesce": lambda a, b=UNDEFINED: _coalesce(a if isinstance(a, list) else [a, b], False),
    "coalesce_ne": lambda a, b=UNDEFINED: _coalesce(a if isinstance(a, list) else [a, b], True),
    "is_null": lambda x: x is UNDEFINED,
    "is_not_null": lambda x: x is not UNDEFINED,
    "is_null_var": lambda x: x is UNDEFINED or x is None,
    "is_not_null_var": lambda x: not (x is UNDEFINED or x is None),
    "is_str": lambda x: isinstance(x, str),
    "is_bool": lambda x: isinstance(x, bool),
    "is_int": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "is_float": lambda x: isinstance(x, float),
    "is_num": is_number,
    "is_map": lambda x: isinstance(x, dict),
    "is_array": lambda x: isinstance(x, list),
})


@fn("is_empty")
def is_empty(x: Any) -> bool:
    if isinstance(x, list):
        return not x
    if x == "":
        return True
    return not map_(x)


# ----------------------------------------------------------------------------- casts
@fn("str", "str_utf8")
def str_(x: Any) -> str:
    return _str(x)


@fn("int")
def int_(x: Any) -> int:
    if isinstance(x, bool):
        return 1 if x else 0
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return math.floor(x)
    if isinstance(x, str):
        n = parse_number(x)
        if n is not None:
            return n if isinstance(n, int) else math.floor(n)
    raise ValueError(f"badarg: cannot convert {x!r} to an integer")


@fn("float")
def float_(x: Any, decimals: Any = None) -> float:
    if is_number(x):
        value = float(x)
    elif isinstance(x, str) and parse_number(x) is not None:
        value = float(parse_number(x))  # type: ignore[arg-type]
    else:
        raise ValueError(f"badarg: cannot convert {x!r} to a float")
    if decimals is None:
        return value
    d = _int(decimals)
    if not 0 < d <= 253:
        raise ValueError("decimals must be between 1 and 253")
    return float(f"{value:.{d}f}")


@fn("float2str")
def float2str(x: Any, precision: Any) -> str:
    if not isinstance(x, float):
        raise ValueError("float2str needs a float")
    return format_float(x, _int(precision))


@fn("bool")
def bool_(x: Any) -> bool:
    if isinstance(x, bool):
        return x
    if x == "true" or (is_number(x) and x == 1):
        return True
    if x == "false" or (is_number(x) and x == 0):
        return False
    raise ValueError(f"badarg: cannot convert {x!r} to a boolean")


@fn("map")
def map_(x: Any) -> dict[str, Any]:
    if isinstance(x, dict):
        return x
    decoded = try_json(x) if isinstance(x, (str, bytes)) else UNDEFINED
    if isinstance(decoded, dict):
        return decoded
    raise ValueError(f"badarg: cannot convert {to_text(x)!r} to a map")


# ----------------------------------------------------------------------------- strings
F.update({
    "lower": lambda s: _s(s).lower(),
    "upper": lambda s: _s(s).upper(),
    "trim": lambda s: _s(s).strip(),
    "ltrim": lambda s: _s(s).lstrip(),
    "reverse": lambda s: _s(s)[::-1],
    "strlen": lambda s: len(_s(s)),
    "ascii": lambda s: _s(s).encode()[0],
    "rm_prefix": lambda s, p: _s(s)[len(_s(p)):] if _s(s).startswith(_s(p)) else _s(s),
})


@fn("rtrim")
def rtrim(s: Any, chars: Any = None) -> str:
    return _s(s).rstrip() if chars is None else _s(s).rstrip(_s(chars))


@fn("substr")
def substr(s: Any, start: Any, length: Any = None) -> str:
    """0-based: ``substr('abcdef', 2)`` is ``'cdef'``."""
    text, i = _s(s), _int(start)
    if i < 0 or (length is not None and _int(length) < 0):
        raise ValueError("substr start and length must be >= 0")
    return text[i:] if length is None else text[i: i + _int(length)]


@fn("split")
def split(s: Any, sep: Any, option: Any = None) -> list[str]:
    """Split on ``sep``; empty parts dropped unless ``*_notrim``; ``leading``/``trailing`` split once."""
    text, separator = _s(s), _s(sep)
    if not separator:
        raise ValueError("split separator must not be empty")
    keep = option in ("notrim", "leading_notrim", "trailing_notrim")
    if option in (None, "notrim"):
        parts = text.split(separator)
    elif option in ("leading", "leading_notrim"):
        parts = text.split(separator, 1)
    elif option in ("trailing", "trailing_notrim"):
        parts = text.rsplit(separator, 1)
    else:
        raise ValueError("split option is notrim, leading, leading_notrim, trailing or trailing_notrim")
    return parts if keep else [p for p in parts if p]


@fn("tokens")
def tokens(s: Any, chars: Any, nocrlf: Any = None) -> list[str]:
    seps = set(_s(chars)) | ({"\r", "\n"} if nocrlf == "nocrlf" else set())
    out: list[str] = []
    cur: list[str] = []
    for ch in _s(s):
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
def concat(a: Any, b: Any = None) -> str:
    parts = a if b is None and isinstance(a, list) else [a, b]
    return _guard("".join(_str(p) for p in parts))


@fn("pad")
def pad(s: Any, length: Any, where: Any = "trailing", char: Any = " ") -> str:
    """Pad to ``length`` characters; a multi-character pad string counts as one unit (as in EMQX)."""
    text, n, unit = _s(s), _int(length), _s(char)
    if n > MAX_TEXT:
        raise ValueError("pad length too large")
    missing = max(0, n - len(text))
    if where == "trailing":
        return _guard(text + unit * missing)
    if where == "leading":
        return _guard(unit * missing + text)
    if where == "both":
        left = missing // 2
        return _guard(unit * left + text + unit * (missing - left))
    raise ValueError("pad position is leading, trailing or both")


@fn("replace")
def replace(s: Any, old: Any, new: Any, where: Any = "all") -> str:
    text, a, b = _s(s), _s(old), _s(new)
    if not a:
        return text
    if where == "all":
        return _guard(text.replace(a, b))
    if where == "leading":
        return text.replace(a, b, 1)
    if where == "trailing":
        i = text.rfind(a)
        return text if i < 0 else text[:i] + b + text[i + len(a):]
    raise ValueError("replace position is all, leading or trailing")


@fn("find")
def find(s: Any, sub: Any, where: Any = "leading") -> str:
    """The rest of ``s`` from the first (or last, ``'trailing'``) occurrence of ``sub``; ``''`` if none."""
    text, needle = _s(s), _s(sub)
    i = text.find(needle) if where == "leading" else text.rfind(needle)
    return "" if i < 0 or not needle else text[i:]


def _compile(pattern: Any) -> Any:
    try:
        return regex.compile(_s(pattern))
    except regex.error as exc:
        raise ValueError(f"badarg: invalid regular expression {pattern!r}: {exc}") from None


def _regex_call(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except TimeoutError:
        raise RuleRuntimeError(f"regular expression took longer than {REGEX_TIMEOUT_S * 1000:.0f} ms",
                               hint="simplify the pattern (nested quantifiers backtrack exponentially)",
                               reason="regex_timeout") from None


@fn("regex_match")
def regex_match(s: Any, pattern: Any) -> bool:
    rx = _compile(pattern)
    return _regex_call(lambda: rx.search(_s(s), timeout=REGEX_TIMEOUT_S)) is not None


_REPL = regex.compile(r"\\&|&|\\g\{(\d+)\}|\\g(\d+)|\\(\d+)")


@fn("regex_replace")
def regex_replace(s: Any, pattern: Any, repl: Any) -> str:
    """Erlang ``re:replace`` syntax: ``&`` is the match, ``\\N``/``\\gN``/``\\g{N}`` a group, ``\\&`` a literal &."""
    rx, template = _compile(pattern), _s(repl)

    def expand(m: Any) -> str:
        def one(t: Any) -> str:
            token = t.group(0)
            if token == "\\&":
                return "&"
            if token == "&":
                return str(m.group(0))
            n = int(next(g for g in t.groups() if g is not None))
            return str(m.group(n) or "") if n <= len(m.groups()) else ""
        return str(_REPL.sub(one, template))

    return _guard(_regex_call(lambda: rx.sub(expand, _s(s), timeout=REGEX_TIMEOUT_S)))


@fn("regex_extract")
def regex_extract(s: Any, pattern: Any) -> list[str]:
    """The capture groups of the first match (``[]`` without a match or without groups)."""
    rx = _compile(pattern)
    m = _regex_call(lambda: rx.search(_s(s), timeout=REGEX_TIMEOUT_S))
    return [g or "" for g in m.groups()] if m is not None else []


@fn("join_to_string")
def join_to_string(sep: Any, items: Any = None) -> str:
    if items is None:
        sep, items = ", ", sep
    if not isinstance(items, list):
        raise TypeError("join_to_string needs an array")
    return _guard(_s(sep).join(_str(i) for i in items))


_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "'": "'", '"': '"',
            "?": "?", "a": "\a"}


@fn("unescape")
def unescape(s: Any) -> str:
    text, out, i = _s(s), [], 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 >= len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x":
            j = i + 2
            while j < len(text) and text[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                raise ValueError("unrecognized_escape_sequence: \\x")
            code = int(text[i + 2: j], 16)
            if code > 0x10FFFF:
                raise ValueError(f"invalid_unicode_character: {code}")
            out.append(chr(code))
            i = j
        else:
            raise ValueError(f"unrecognized_escape_sequence: \\{nxt}")
    return "".join(out)


def _format_one(directive: str, arg: Any) -> str:
    if directive in ("s", "ts"):
        return _str(arg)
    if directive in ("p", "w"):
        if isinstance(arg, str):
            return f'<<"{arg}">>'
        return json.dumps(arg) if isinstance(arg, (dict, list)) else _str(arg)
    if directive.endswith(("B", "b")):
        base = int(directive[1:-1]) if directive.startswith(".") else 10
        n = _int(arg)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        text, value = "", abs(n)
        while True:
            value, r = divmod(value, base)
            text = digits[r] + text
            if not value:
                break
        text = ("-" if n < 0 else "") + text
        return text.lower() if directive.endswith("b") and base > 10 else text
    if directive.endswith(("f", "e", "g")):
        if not isinstance(arg, float):
            raise ValueError("badarg: ~f/~e/~g need a float")
        precision = int(directive[1:-1]) if directive.startswith(".") else 6
        return f"{arg:.{precision}{directive[-1]}}"
    if directive == "c":
        return chr(_int(arg))
    raise ValueError(f"badarg: unsupported directive ~{directive}")


_DIRECTIVE = regex.compile(r"~(~|n|ts|s|p|w|c|(?:\.\d+)?[bBfeg])")


def _sprintf(fmt: Any, args: list[Any]) -> str:
    """Erlang ``io_lib:format`` directives: ~s ~ts ~p ~w ~B ~.16B ~f ~.2f ~e ~g ~c ~n ~~."""
    text, it = _s(fmt), iter(args)

    def sub(m: Any) -> str:
        d = m.group(1)
        if d == "~":
            return "~"
        if d == "n":
            return "\n"
        try:
            return _format_one(d, next(it))
        except StopIteration:
            raise ValueError("badarg: fewer arguments than directives") from None

    out = _DIRECTIVE.sub(sub, text)
    if next(it, UNDEFINED) is not UNDEFINED:
        raise ValueError("badarg: more arguments than directives")
    return _guard(out)


F["sprintf"] = lambda fmt, *args: _sprintf(fmt, list(args))
F["sprintf_s"] = lambda fmt, args: _sprintf(fmt, list(args) if isinstance(args, list) else [args])


# ----------------------------------------------------------------------------- maps
@fn("map_get")
def map_get(key: Any, m: Any, default: Any = UNDEFINED) -> Any:
    """``map_get('a.b', m)`` follows a dotted path; JSON strings on the way are decoded."""
    value: Any = map_(m)
    for part in _s(key).split("."):
        if isinstance(value, str):
            value = try_json(value)
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return default if value is UNDEFINED else value


@fn("map_put")
def map_put(key: Any, value: Any, m: Any) -> dict[str, Any]:
    out = dict(m) if isinstance(m, dict) else {}  # a JSON string is not decoded here: EMQX starts from {}
    parts = _s(key).split(".")
    cur = out
    for part in parts[:-1]:
        nxt = cur.get(part)
        nxt = dict(nxt) if isinstance(nxt, dict) else {}
        cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value
    return out


F.update({
    "map_new": lambda: {},
    "mget": lambda key, m, default=UNDEFINED: map_(m).get(_s(key), default),
    "mput": lambda key, value, m: {**map_(m), _s(key): value},
    "map_keys": lambda m: list(map_(m).keys()),
    "map_values": lambda m: list(map_(m).values()),
    "map_to_entries": lambda m: [{"key": k, "value": v} for k, v in map_(m).items()],
    "map_size": lambda m: 0 if m == [] else len(map_(m)),
})


# ----------------------------------------------------------------------------- arrays (1-based)
def _list(x: Any) -> list[Any]:
    if not isinstance(x, list):
        raise TypeError(f"expected an array, got {to_text(x)!r}")
    return x


@fn("nth")
def nth(n: Any, items: Any) -> Any:
    lst, i = _list(items), _int(n)
    if not 1 <= i <= len(lst):
        raise IndexError(f"nth: index {i} out of range 1..{len(lst)}")
    return lst[i - 1]


@fn("sublist")
def sublist(a: Any, b: Any, c: Any = None) -> list[Any]:
    """``sublist(len, list)`` or ``sublist(start, len, list)``, start 1-based."""
    if c is None:
        n = _int(a)
        if n < 0:
            raise ValueError("sublist length must be >= 0")
        return _list(b)[:n]
    lst, start, n = _list(c), _int(a), _int(b)
    if not 1 <= start <= len(lst) + 1 or n < 0:
        raise ValueError("sublist start is 1..length+1 and length >= 0")
    return lst[start - 1: start - 1 + n]


def _first(x: Any) -> Any:
    lst = _list(x)
    if not lst:
        raise ValueError("badarg: first of an empty array")
    return lst[0]


def _last(x: Any) -> Any:
    lst = _list(x)
    if not lst:
        raise ValueError("last of an empty array")
    return lst[-1]


F.update({
    "length": lambda x: len(_list(x)),
    "first": _first,
    "last": _last,
    "contains": lambda item, items: any(exact_equal(item, i) for i in _list(items)),
})
