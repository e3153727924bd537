"""Rule functions: encodings, hashing, compression, bit operations, dates and times, ids."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip as _gzip
import hashlib
import json
import os
import time
import uuid
import zlib
from typing import Any

from ._errors import RuleRuntimeError
from ._funcs import F, _int, _num, _str, fn
from ._values import UNDEFINED, to_jsonable

MAX_INFLATE = 16 << 20  # decompression bombs stop here


def _bytes(x: Any) -> bytes:
    if isinstance(x, (bytes, bytearray)):
        return bytes(x)
    return _str(x).encode("utf-8")


def _out(data: bytes) -> Any:
    """Binary results stay text when they are valid UTF-8 (Erlang binaries print either way)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


# ----------------------------------------------------------------------------- JSON, base64, hex
@fn("json_encode")
def json_encode(x: Any) -> str:
    return json.dumps(to_jsonable(x), separators=(",", ":"), ensure_ascii=False)


@fn("json_decode")
def json_decode(x: Any) -> Any:
    try:
        return json.loads(_bytes(x))
    except (ValueError, RecursionError):
        raise RuleRuntimeError(f"json_decode: not JSON: {_str(x)[:80]!r}") from None


F.update({
    "base64_encode": lambda x: base64.b64encode(_bytes(x)).decode(),
    "bin2hexstr": lambda x: _bytes(x).hex().upper(),
    "md5": lambda x: hashlib.md5(_bytes(x)).hexdigest(),
    "sha": lambda x: hashlib.sha1(_bytes(x)).hexdigest(),
    "sha256": lambda x: hashlib.sha256(_bytes(x)).hexdigest(),
    "bytesize": lambda x: len(_bytes(x)),
    "bitsize": lambda x: 8 * len(_bytes(x)),
})


@fn("base64_decode")
def base64_decode(x: Any) -> Any:
    try:
        return _out(base64.b64decode(_bytes(x), validate=True))
    except binascii.Error as exc:
        raise RuleRuntimeError(f"base64_decode: {exc}") from None


@fn("hexstr2bin")
def hexstr2bin(x: Any) -> Any:
    try:
        return _out(bytes.fromhex(_str(x)))
    except ValueError as exc:
        raise RuleRuntimeError(f"hexstr2bin: {exc}") from None


# ----------------------------------------------------------------------------- compression
def _inflate(data: bytes, wbits: int) -> bytes:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, MAX_INFLATE)
    except zlib.error as exc:
        raise RuleRuntimeError(f"cannot decompress: {exc}") from None
    if d.unconsumed_tail:
        raise RuleRuntimeError(f"decompressed data exceeds {MAX_INFLATE >> 20} MiB")
    return out


F.update({
    "gzip": lambda x: _gzip.compress(_bytes(x)),
    "gunzip": lambda x: _out(_inflate(_bytes(x), 16 + zlib.MAX_WBITS)),
    "zip": lambda x: zlib.compress(_bytes(x))[2:-4],  # raw deflate, as Erlang's zlib:zip
    "unzip": lambda x: _out(_inflate(_bytes(x), -zlib.MAX_WBITS)),
    "zip_compress": lambda x: zlib.compress(_bytes(x)),
    "zip_uncompress": lambda x: _out(_inflate(_bytes(x), zlib.MAX_WBITS)),
})


# ----------------------------------------------------------------------------- bits
def _shift(n: Any) -> int:
    s = _int(n)
    if not 0 <= s <= 1024:
        raise RuleRuntimeError("shift amounts are limited to 0..1024")
    return s


F.update({
    "bitnot": lambda x: ~_int(x),
    "bitand": lambda x, y: _int(x) & _int(y),
    "bitor": lambda x, y: _int(x) | _int(y),
    "bitxor": lambda x, y: _int(x) ^ _int(y),
    "bitsl": lambda x, n: _int(x) << _shift(n),
    "bitsr": lambda x, n: _int(x) >> _shift(n),
})


@fn("subbits")
def subbits(data: Any, a: Any, b: Any = None, kind: Any = "integer", signedness: Any = "unsigned",
            endianness: Any = "big") -> Any:
    """``subbits(bin, len)`` (from the first bit), ``subbits(bin, start, len)`` (1-based bit), or with type
    (``integer``/``float``/``bits``), signedness and endianness."""
    raw = _bytes(data)
    start, length = (1, _int(a)) if b is None else (_int(a), _int(b))
    total = len(raw) * 8
    if start < 1 or length < 0 or start - 1 + length > total:
        return UNDEFINED
    value = int.from_bytes(raw, "big") >> (total - (start - 1) - length) & ((1 << length) - 1) if length else 0
    if kind == "bits":
        return value.to_bytes((length + 7) // 8, "big")
    if endianness == "little" and length % 8 == 0:
        value = int.from_bytes(value.to_bytes(length // 8, "big"), "little")
    if kind == "float":
        import struct

        if length == 32:
            return struct.unpack(">f", value.to_bytes(4, "big"))[0]
        if length == 64:
            return struct.unpack(">d", value.to_bytes(8, "big"))[0]
        raise RuleRuntimeError("float subbits need 32 or 64 bits")
    if signedness == "signed" and length and value >> (length - 1):
        value -= 1 << length
    return value


# ----------------------------------------------------------------------------- time
_UNITS = {"second": 1, "millisecond": 1000, "microsecond": 1_000_000, "nanosecond": 1_000_000_000}


def _unit(u: Any) -> int:
    if _str(u) not in _UNITS:
        raise RuleRuntimeError(f"unknown time unit {u!r}", hint="second, millisecond, microsecond or nanosecond")
    return _UNITS[_str(u)]


def _tz(offset: Any) -> dt.tzinfo:
    text = _str(offset)
    if text in ("Z", "z", "UTC", "utc", "+00:00", "local"):
        return dt.timezone.utc if text != "local" else dt.datetime.now().astimezone().tzinfo or dt.timezone.utc
    try:
        if isinstance(offset, (int, float)):
            return dt.timezone(dt.timedelta(seconds=int(offset)))
        sign = -1 if text[0] == "-" else 1
        hh, mm = text[1:].split(":") if ":" in text else (text[1:3], text[3:5] or "0")
        return dt.timezone(sign * dt.timedelta(hours=int(hh), minutes=int(mm)))
    except (ValueError, IndexError):
        raise RuleRuntimeError(f"invalid time offset {offset!r}", hint="use Z, +08:00 or -0500") from None


def _rfc3339(ts: float, unit: int, tz: dt.tzinfo = dt.timezone.utc) -> str:
    moment = dt.datetime.fromtimestamp(ts / unit, tz)
    digits = {1: 0, 1000: 3, 1_000_000: 6, 1_000_000_000: 6}[unit]
    text = moment.isoformat(timespec={0: "seconds", 3: "milliseconds", 6: "microseconds"}[digits])
    return text.replace("+00:00", "Z") if tz is dt.timezone.utc else text


@fn("now_timestamp")
def now_timestamp(unit: Any = "second") -> int:
    return time.time_ns() * _unit(unit) // 1_000_000_000


@fn("now_rfc3339")
def now_rfc3339(unit: Any = "second") -> str:
    u = _unit(unit)
    return _rfc3339(time.time_ns() * u // 1_000_000_000, u)


@fn("unix_ts_to_rfc3339")
def unix_ts_to_rfc3339(ts: Any, unit: Any = "second") -> str:
    return _rfc3339(_num(ts), _unit(unit))


@fn("rfc3339_to_unix_ts")
def rfc3339_to_unix_ts(text: Any, unit: Any = "second") -> int:
    try:
        moment = dt.datetime.fromisoformat(_str(text).replace("Z", "+00:00"))
    except ValueError:
        raise RuleRuntimeError(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * _unit(unit) + delta.microseconds * _unit(unit) // 1_000_000


_FORMAT = {"%Y": "%Y", "%m": "%m", "%d": "%d", "%H": "%H", "%M": "%M", "%S": "%S", "%y": "%y", "%%": "%%"}


@fn("format_date")
def format_date(unit: Any, offset: Any, fmt: Any, ts: Any = None) -> str:
    """``format_date(unit, offset, format[, time])``: strftime-like (%Y %m %d %H %M %S %N %3N %6N %z %:z)."""
    u = _unit(unit)
    stamp = _num(ts) if ts is not None else time.time_ns() * u // 1_000_000_000
    moment = dt.datetime.fromtimestamp(stamp / u, _tz(offset))
    text = _str(fmt)
    frac = f"{int(stamp % u * 1_000_000_000 // u):09d}"
    text = text.replace("%N", frac).replace("%3N", frac[:3]).replace("%6N", frac[:6]).replace("%9N", frac)
    z = moment.strftime("%z")
    text = text.replace("%::z", z[:3] + ":" + z[3:] + ":00").replace("%:z", z[:3] + ":" + z[3:])
    return moment.strftime(text)


@fn("date_to_unix_ts")
def date_to_unix_ts(unit: Any, a: Any, b: Any = None, c: Any = None) -> int:
    """``date_to_unix_ts(unit, format, date)`` or ``date_to_unix_ts(unit, offset, format, date)``."""
    offset, fmt, text = ("Z", a, b) if c is None else (a, b, c)
    try:
        moment = dt.datetime.strptime(_str(text), _str(fmt))
    except ValueError as exc:
        raise RuleRuntimeError(f"date_to_unix_ts: {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_tz(offset))
    return int(moment.timestamp()) * _unit(unit)


@fn("timezone_to_offset_seconds", "timezone_to_second")
def timezone_to_offset_seconds(offset: Any) -> int:
    delta = _tz(offset).utcoffset(None)
    return int(delta.total_seconds()) if delta is not None else 0


# ----------------------------------------------------------------------------- ids and environment
F.update({
    "uuid_v4": lambda: str(uuid.uuid4()),
    "uuid_v4_no_hyphen": lambda: uuid.uuid4().hex,
})


@fn("getenv")
def getenv(name: Any) -> Any:
    """Only variables prefixed ``EMQXVAR_`` are readable, as in EMQX (nothing else leaks into rules)."""
    return os.environ.get("EMQXVAR_" + _str(name), UNDEFINED)
