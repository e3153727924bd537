"""Rule functions: encodings, hashing, compression, bit operations, dates and times, ids.

EMQX semantics (emqx_rule_funcs, emqx_utils_calendar): time units are exact strings, offsets are
seconds, 'Z', 'local', '+HH:MM', '+HH:MM:SS' or '+HHMM'; RFC 3339 output uses the node's local
offset written as +HH:MM; date_to_unix_ts reads fields by position.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip as _gzip
import hashlib
import json
import os
import re
import struct
import time
import uuid
import zlib
from typing import Any

from ._errors import RuleRuntimeError
from ._funcs import F, _int, _s, fn
from ._values import UNDEFINED, to_jsonable

MAX_INFLATE = 16 << 20  # decompression bombs stop here


def _bytes(x: Any) -> bytes:
    """Binary arguments: strings (UTF-8) or binaries; anything else is a bad argument."""
    if isinstance(x, (bytes, bytearray)):
        return bytes(x)
    return _s(x).encode("utf-8")


def _out(data: bytes) -> Any:
    """Binary results stay text when they are valid UTF-8 (Erlang binaries print either way)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


# ----------------------------------------------------------------------------- JSON, base64, hex, hashes
@fn("json_encode")
def json_encode(x: Any) -> str:
    return json.dumps(to_jsonable(x), separators=(",", ":"), ensure_ascii=False)


@fn("json_decode")
def json_decode(x: Any) -> Any:
    try:
        return json.loads(_bytes(x))
    except (ValueError, RecursionError):
        raise ValueError(f"json_decode: not JSON: {_bytes(x)[:80]!r}") from None


F.update({
    "base64_encode": lambda x: base64.b64encode(_bytes(x)).decode(),
    "md5": lambda x: hashlib.md5(_bytes(x)).hexdigest(),
    "sha": lambda x: hashlib.sha1(_bytes(x)).hexdigest(),
    "sha256": lambda x: hashlib.sha256(_bytes(x)).hexdigest(),
    "bytesize": lambda x: len(_bytes(x)),
    "bitsize": lambda x: 8 * len(_bytes(x)),
    "str_utf16_le": lambda x: (x if isinstance(x, str) else json_encode(x)).encode("utf-16-le"),
    "sqlserver_bin2hexstr": lambda x: "0x" + _bytes(x).hex().upper(),
})

_HASHES = {"md5": "md5", "sha": "sha1", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384",
           "sha512": "sha512", "sha3_224": "sha3_224", "sha3_256": "sha3_256", "sha3_384": "sha3_384",
           "sha3_512": "sha3_512", "blake2b": "blake2b", "blake2s": "blake2s"}


@fn("hash")
def hash_(algorithm: Any, data: Any) -> str:
    name = _HASHES.get(_s(algorithm))
    if name is None:
        raise RuleRuntimeError(f"unknown hash algorithm {algorithm!r}", reason={"reason": "unknown_hash_algorithm"},
                               hint=f"one of {', '.join(_HASHES)}")
    return hashlib.new(name, _bytes(data)).hexdigest()


@fn("bin2hexstr")
def bin2hexstr(x: Any, prefix: Any = "") -> str:
    return _s(prefix) + _bytes(x).hex().upper()


@fn("base64_decode")
def base64_decode(x: Any) -> Any:
    try:
        return _out(base64.b64decode(_bytes(x), validate=True))
    except binascii.Error as exc:
        raise ValueError(f"base64_decode: {exc}") from None


@fn("hexstr2bin")
def hexstr2bin(x: Any, prefix: Any = None) -> Any:
    """Upper or lower case; an odd length gets a leading 0; with ``prefix`` the text must start with it."""
    text = _s(x)
    if prefix is not None:
        if not text.startswith(_s(prefix)):
            raise RuleRuntimeError("binary_prefix_unmatch", reason="binary_prefix_unmatch")
        text = text[len(_s(prefix)):]
    if len(text) % 2:
        text = "0" + text
    return _out(bytes.fromhex(text))


# ----------------------------------------------------------------------------- compression
def _inflate(data: bytes, wbits: int) -> bytes:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, MAX_INFLATE)
    except zlib.error as exc:
        raise ValueError(f"cannot decompress: {exc}") from None
    if d.unconsumed_tail:
        raise RuleRuntimeError(f"decompressed data exceeds {MAX_INFLATE >> 20} MiB", reason="data_too_large")
    return out


F.update({
    "gzip": lambda x: _gzip.compress(_bytes(x), mtime=0),
    "gunzip": lambda x: _out(_inflate(_bytes(x), 16 + zlib.MAX_WBITS)),
    "zip": lambda x: zlib.compress(_bytes(x))[2:-4],  # raw deflate, as Erlang's zlib:zip
    "unzip": lambda x: _out(_inflate(_bytes(x), -zlib.MAX_WBITS)),
    "zip_compress": lambda x: zlib.compress(_bytes(x)),
    "zip_uncompress": lambda x: _out(_inflate(_bytes(x), zlib.MAX_WBITS)),
})


# ----------------------------------------------------------------------------- bits
def _shift(x: Any, n: Any) -> int:
    value, by = _int(x), _int(n)
    if abs(by) > 1024:
        raise RuleRuntimeError("shift amounts are limited to 1024 bits", reason="badarg")
    return value << by if by >= 0 else value >> -by


F.update({
    "bitnot": lambda x: ~_int(x),
    "bitand": lambda x, y: _int(x) & _int(y),
    "bitor": lambda x, y: _int(x) | _int(y),
    "bitxor": lambda x, y: _int(x) ^ _int(y),
    "bitsl": lambda x, n: _shift(x, n),
    "bitsr": lambda x, n: _shift(x, -_int(n)),
})


@fn("subbits")
def subbits(data: Any, a: Any, b: Any = None, kind: Any = "integer", signedness: Any = "unsigned",
            endianness: Any = "big") -> Any:
    """``subbits(bin, len)`` or ``subbits(bin, start, len[, type[, signedness[, endianness]]])``: start is a
    1-based bit; fewer bits than asked are all taken; starting past the end gives undefined."""
    raw = _bytes(data)
    start, length = (1, _int(a)) if b is None else (_int(a), _int(b))
    if kind not in ("integer", "float", "bits") or signedness not in ("unsigned", "signed") or \
            endianness not in ("big", "little") or start < 1 or length < 0:
        raise ValueError("subbits: type integer|float|bits, signedness unsigned|signed, endianness big|little")
    total = len(raw) * 8
    if start - 1 >= total:
        return UNDEFINED
    length = min(length, total - (start - 1))
    value = (int.from_bytes(raw, "big") >> (total - (start - 1) - length)) & ((1 << length) - 1) if length else 0
    if kind == "bits":
        return value.to_bytes((length + 7) // 8, "big")
    if endianness == "little" and length % 8 == 0 and length:
        value = int.from_bytes(value.to_bytes(length // 8, "big"), "little")
    if kind == "float":
        fmt = {16: ">e", 32: ">f", 64: ">d"}.get(length)
        if fmt is None:
            raise ValueError("float subbits need 16, 32 or 64 bits")
        return struct.unpack(fmt, value.to_bytes(length // 8, "big"))[0]
    if signedness == "signed" and length and value >> (length - 1):
        value -= 1 << length
    return value


# ----------------------------------------------------------------------------- time
_UNITS = {"second": 1, "millisecond": 1000, "microsecond": 1_000_000, "nanosecond": 1_000_000_000}
_DIGITS = {1: 0, 1000: 3, 1_000_000: 6, 1_000_000_000: 9}
_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)(?::(\d\d))?$")


def _unit(u: Any) -> int:
    if not isinstance(u, str) or u not in _UNITS:
        raise RuleRuntimeError(f"invalid_time_unit: {u!r}", hint="second, millisecond, microsecond or nanosecond",
                               reason={"invalid_time_unit": str(u)})
    return _UNITS[u]


def _local_offset() -> int:
    delta = dt.datetime.now().astimezone().utcoffset()
    return int(delta.total_seconds()) if delta else 0


def _offset_seconds(offset: Any) -> int:
    """Integer seconds, undefined (0), 'local', 'Z'/'z', '+HH:MM', '+HH:MM:SS' or '+HHMM'."""
    if offset is UNDEFINED:
        return 0
    if isinstance(offset, int) and not isinstance(offset, bool):
        return offset
    text = _s(offset)
    if text in ("Z", "z"):
        return 0
    if text == "local":
        return _local_offset()
    m = _OFFSET.match(text)
    if m and int(m[2]) <= 23 and int(m[3]) <= 59 and int(m[4] or 0) <= 59:
        secs = int(m[2]) * 3600 + int(m[3]) * 60 + int(m[4] or 0)
        return secs if m[1] == "+" else -secs
    raise RuleRuntimeError(f"bad_time_offset: {offset!r}", hint="use Z, +08:00, +0800, +08:00:00 or seconds",
                           reason="bad_time_offset")


def _fmt_offset(secs: int, sep: str = ":", with_seconds: bool = False) -> str:
    sign = "+" if secs >= 0 else "-"
    h, rem = divmod(abs(secs), 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h:02d}{sep}{m:02d}" + (f"{sep}{s:02d}" if with_seconds else "")


def _rfc3339(ts: int, unit: int, offset: int) -> str:
    secs, frac = divmod(ts, unit)
    moment = dt.datetime.fromtimestamp(secs, dt.timezone(dt.timedelta(seconds=offset)))
    digits = _DIGITS[unit]
    fraction = f".{frac:0{digits}d}" if digits else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + _fmt_offset(offset)


def _now(unit: int) -> int:
    return time.time_ns() * unit // 1_000_000_000


F.update({
    "now_timestamp": lambda unit="second": _now(_unit(unit)),
    "now_rfc3339": lambda unit="second": _rfc3339(_now(_unit(unit)), _unit(unit), _local_offset()),
})


@fn("unix_ts_to_rfc3339")
def unix_ts_to_rfc3339(ts: Any, unit: Any = "second") -> str:
    return _rfc3339(_int(ts), _unit(unit), _local_offset())


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$")


@fn("rfc3339_to_unix_ts")
def rfc3339_to_unix_ts(text: Any, unit: Any = "second") -> int:
    u = _unit(unit)
    m = _RFC3339.match(_s(text).strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base = dt.datetime.strptime(f"{m[1]}T{m[2]}", "%Y-%m-%dT%H:%M:%S")
    offset = 0 if m[4] in ("Z", "z") else _offset_seconds(m[4])
    epoch = int((base - dt.datetime(1970, 1, 1)).total_seconds()) - offset
    frac_ns = int((m[3] or "0").ljust(9, "0")[:9])
    return epoch * u + frac_ns * u // 1_000_000_000


_DIRECTIVES = re.compile(r"%(?:::z|:z|z|[36]?N|[YmdHMS])")
_WIDTH = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2, "%3N": 3, "%6N": 6, "%N": 9, "%z": 5, "%:z": 6,
          "%::z": 9}


@fn("format_date")
def format_date(unit: Any, offset: Any, fmt: Any, ts: Any = None) -> str:
    """``format_date(unit, offset, format[, time])``: %Y %m %d %H %M %S %N %3N %6N %z %:z %::z; other text is literal."""
    u = _unit(unit)
    stamp = _int(ts) if ts is not None else _now(u)
    off = _offset_seconds(offset)
    secs, frac = divmod(stamp, u)
    moment = dt.datetime.fromtimestamp(secs, dt.timezone(dt.timedelta(seconds=off)))
    nanos = f"{frac * 1_000_000_000 // u:09d}"
    values = {"%Y": f"{moment.year:04d}", "%m": f"{moment.month:02d}", "%d": f"{moment.day:02d}",
              "%H": f"{moment.hour:02d}", "%M": f"{moment.minute:02d}", "%S": f"{moment.second:02d}",
              "%N": nanos, "%3N": nanos[:3], "%6N": nanos[:6], "%z": _fmt_offset(off, ""),
              "%:z": _fmt_offset(off), "%::z": _fmt_offset(off, ":", True)}
    return _DIRECTIVES.sub(lambda m: values[m.group(0)], _s(fmt))


@fn("date_to_unix_ts")
def date_to_unix_ts(unit: Any, a: Any, b: Any, c: Any = None) -> int:
    """``date_to_unix_ts(unit, [offset,] format, date)``: fields are read by position; literal characters are
    skipped, not compared (as EMQX does)."""
    u = _unit(unit)
    offset, fmt, text = (0, _s(a), _s(b)) if c is None else (_offset_seconds(a), _s(b), _s(c))
    parts: dict[str, int] = {}
    frac_ns, zone, pos, i = 0, 0, 0, 0
    while i < len(fmt) and pos < len(text):
        m = _DIRECTIVES.match(fmt, i)
        if m is None:
            i += 1
            pos += 1
            continue
        d = m.group(0)
        field = text[pos: pos + _WIDTH[d]]
        pos += _WIDTH[d]
        i = m.end()
        if d in ("%z", "%:z", "%::z"):
            zone = _offset_seconds(field if d != "%z" else f"{field[:3]}:{field[3:]}")
        elif not field.isdigit():
            raise ValueError(f"bad_formatter_or_date: {field!r} for {d}")
        elif d.endswith("N"):
            frac_ns = int(field.ljust(9, "0"))
        else:
            parts[d] = int(field)
    for d, name in (("%Y", "year"), ("%m", "month"), ("%d", "day"), ("%H", "hour"), ("%M", "minute"),
                    ("%S", "second")):
        if d not in parts:
            raise RuleRuntimeError(f"missing_date_part: {name}", reason={"missing_date_part": name})
    moment = dt.datetime(parts["%Y"], parts["%m"], parts["%d"], parts["%H"], parts["%M"], parts["%S"])
    epoch = int((moment - dt.datetime(1970, 1, 1)).total_seconds()) - zone - offset
    return epoch * u + frac_ns * u // 1_000_000_000


@fn("timezone_to_offset_seconds", "timezone_to_second")
def timezone_to_offset_seconds(offset: Any) -> int:
    return _offset_seconds(offset)


# ----------------------------------------------------------------------------- ids and environment
F.update({
    "uuid_v4": lambda: str(uuid.uuid4()),
    "uuid_v4_no_hyphen": lambda: uuid.uuid4().hex,
})


@fn("getenv")
def getenv(name: Any) -> str:
    """Only variables prefixed ``EMQXVAR_`` are readable, as in EMQX; unset ones read as ''."""
    return os.environ.get("EMQXVAR_" + _s(name), "")
