"""History building blocks: flattening, times, topic filters, InfluxDB line protocol and Flux, files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from mqttlab import ConfigError
from mqttlab.history import _files as files
from mqttlab.history import device_of, flatten
from mqttlab.history._influx_store import line_protocol, messages_flux, series_flux
from mqttlab.history._record import Record
from mqttlab.history._schema import MESSAGES
from mqttlab.history._times import to_interval_s, to_ns
from mqttlab.history._topics import filter_regex

pytestmark = pytest.mark.unit
NOW = 1_800_000_000_000_000_000


def test_flatten() -> None:
    doc = {"t": 21.5, "on": True, "gps": {"lat": 1.0, "lon": 2}, "name": "x", "arr": [1, 2], "n": None,
           "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}
    got = dict(flatten(json.dumps(doc).encode()))
    assert got == {"t": 21.5, "on": 1.0, "gps.lat": 1.0, "gps.lon": 2.0}  # strings, arrays, null and depth > 6 skipped
    assert flatten(b"[1, 2]") == [] and flatten(b"not json") == [] and flatten(b"") == []
    assert len(flatten(json.dumps({f"k{i}": i for i in range(500)}).encode())) == 64  # bounded


def test_device_of() -> None:
    assert device_of("devices/d1/telemetry") == "d1" and device_of("$aws/things/t9/shadow/update") == "t9"
    assert device_of("other/x") is None and device_of("devices") is None


def test_times() -> None:
    assert to_ns("-15m", now_ns=NOW) == NOW - 15 * 60 * 10**9
    assert to_ns("now", now_ns=NOW) == NOW and to_ns(None) is None
    assert to_ns("2026-01-01T00:00:00Z") == int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    assert to_ns(dt.datetime(2026, 1, 1)) == to_ns("2026-01-01T00:00:00+00:00")
    import pandas as pd

    assert to_ns(pd.Timestamp("2026-01-01", tz="UTC")) == to_ns("2026-01-01T00:00:00Z")
    assert to_ns(1_700_000_000) == 1_700_000_000 * 10**9
    assert to_interval_s("500ms") == 0.5 and to_interval_s("1m") == 60 and to_interval_s(2) == 2.0
    for bad in ("-15x", "yesterday-ish"):
        with pytest.raises(ConfigError, match="cannot read the time"):
            to_ns(bad)
    with pytest.raises(ConfigError):
        to_interval_s("0s")


@pytest.mark.parametrize(("flt", "yes", "no"), [
    ("devices/+/telemetry", ["devices/a/telemetry"], ["devices/a/b/telemetry", "devices/a"]),
    ("devices/#", ["devices", "devices/a", "devices/a/b"], ["device/a", "$devices/a"]),
    ("#", ["a", "a/b"], ["$SYS/x"]),
    ("$aws/#", ["$aws/things/x"], ["aws/things"]),
    ("a.b/+", ["a.b/c"], ["aXb/c"]),
])
def test_filter_regex(flt: str, yes: list[str], no: list[str]) -> None:
    import re

    rx = re.compile(filter_regex(flt))
    assert all(rx.match(t) for t in yes) and not any(rx.match(t) for t in no)


def test_influx_line_protocol_is_lossless_and_escaped() -> None:
    payload = b'{"temp": 21.5, "note": "line1\\nline2"}\n\x00\xff'
    rec = Record(7, NOW, "devices/d 1,x=y/telemetry", payload, 1, True, '{"user_property":[["k","v \\"q\\""]]}')
    raw, *rest = line_protocol([rec])
    assert raw.startswith("mqtt_raw,topic=devices/d\\ 1\\,x\\=y/telemetry,device=d\\ 1\\,x\\=y ")
    assert "\n" not in raw and raw.endswith(f" {NOW}")
    import base64
    import re

    b64 = re.search(r'payload_b64="([^"]*)"', raw)
    assert b64 and base64.b64decode(b64.group(1)) == payload and "qos=1i" in raw and "retain=true" in raw
    assert rest == []  # not JSON (trailing bytes), so no fields line
    ok = Record(8, NOW + 1, "devices/d1/telemetry", b'{"t": 1, "gps": {"lat": 2}}', 0, False, None)
    assert line_protocol([ok])[1] == f"mqtt_fields,topic=devices/d1/telemetry,device=d1 t=1.0,gps.lat=2.0 {NOW + 1}"


def test_flux_queries() -> None:
    q = messages_flux("mqtt", topic="devices/+/telemetry", device="d1", start=NOW, limit=10, newest_first=True)
    assert f"range(start: time(v: {NOW}), stop: now())" in q and 'r.device == "d1"' in q
    assert "r.topic =~ /^devices\\/[^\\/]+\\/telemetry$/" in q and "limit(n: 10)" in q and "desc: true" in q
    s = series_flux("mqtt", "gps.lat", every_s=10, agg="max")
    assert 'r._field == "gps.lat"' in s and "aggregateWindow(every: 10000ms, fn: max, createEmpty: false)" in s
    assert 'r.topic == "a\\"b"' in messages_flux("mqtt", topic='a"b')


def test_safe_output_path(tmp_path: Path) -> None:
    existing = tmp_path / "x.jsonl"
    existing.write_text("")
    with pytest.raises(ConfigError, match="already exists"):
        files.safe_output_path(existing)
    assert files.safe_output_path(existing, overwrite=True) == existing
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "target.jsonl")
    with pytest.raises(ConfigError, match="symbolic link"):
        files.safe_output_path(link)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match="outside"):
        files.safe_output_path("../escape.jsonl", base=tmp_path / "sub")
    assert files.safe_output_path("inside.jsonl", base=tmp_path / "sub") == (tmp_path / "sub" / "inside.jsonl").resolve()
    with pytest.raises(ConfigError, match="does not exist"):
        files.safe_output_path(tmp_path / "nope" / "x.csv")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_files_round_trip_bytes_exactly(tmp_path: Path, fmt: str) -> None:
    payloads = [b'{"a": 1}', bytes(range(256)), b"", "h\u00e9llo\n".encode()]
    table = pa.Table.from_pylist([{"seq": i + 1, "ts": NOW + i, "topic": f"t/{i}", "device": None, "payload": p,
                                   "qos": i % 3, "retain": i == 1, "props": '{"content_type":"x"}' if i else None,
                                   "client_id": None} for i, p in enumerate(payloads)], schema=MESSAGES)
    target = tmp_path / f"out.{fmt}"
    assert files.write(table, target, fmt) == 4
    back = files.read(target)
    assert back.column("payload").to_pylist() == payloads
    assert back.column("ts").to_pylist() == [NOW + i for i in range(4)]
    assert back.column("qos").to_pylist() == [0, 1, 2, 0] and back.column("retain").to_pylist() == [False, True, False, False]
    with pytest.raises(ConfigError, match="cannot tell the format"):
        files.detect_format(tmp_path / "x.txt", None)


def test_sql_topic_filters_agree_with_the_regex() -> None:
    import re

    import duckdb

    from mqttlab.history._topics import filter_sql

    topics = ["a", "a/b", "a/b/c", "a/x_y/c", "a/%/c", "$SYS/a", "b/a", "a/b/c/d", "devices/d1/telemetry",
              "devices/d1/x/telemetry", "a/bxc"]
    con = duckdb.connect()
    con.execute("CREATE TABLE m (topic VARCHAR)")
    con.execute("INSERT INTO m SELECT unnest(?::VARCHAR[])", [topics])
    for flt in ["a/+/c", "+/+", "#", "a/#", "a/+/#", "devices/+/telemetry", "$SYS/#", "+/a", "a/x_y/c", "a/b%c"]:
        condition, args = filter_sql(flt)
        got = sorted(r[0] for r in con.execute(f"SELECT topic FROM m WHERE {condition}", args).fetchall())
        rx = re.compile(filter_regex(flt))
        assert got == sorted(t for t in topics if rx.match(t)), flt
