"""The compose backend's history store: InfluxDB 2.x through influxdb-client.

Schema (documented in README): measurement ``mqtt_raw`` per message, tags ``topic`` and ``device``,
fields ``payload_b64`` (the exact bytes, base64: line protocol forbids raw newlines), ``qos``, ``retain``,
``seq``, ``props``; measurement ``mqtt_fields`` with the same tags and one float field per flattened JSON
leaf. Time is the recorder's receive time in ns, made strictly increasing so no two messages share a
point. Writes are synchronous: a batch is in InfluxDB before the recorder acknowledges it (the batching
write API would silently drop its buffer if the process died).
"""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any

from ._record import Record, flatten
from ._topics import filter_regex, has_wildcard

RAW, FIELDS = "mqtt_raw", "mqtt_fields"
_FLUX_AGG = {"mean": "mean", "avg": "mean", "min": "min", "max": "max", "sum": "sum", "count": "count",
             "median": "median", "first": "first", "last": "last"}


def _escape_tag(value: str) -> str:
    return re.sub(r"([,= \\])", r"\\\1", value)


def _escape_str(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def line_protocol(records: list[Record]) -> list[str]:
    """Line protocol for a batch: one ``mqtt_raw`` line per message, one ``mqtt_fields`` line per JSON message."""
    lines = []
    for r in records:
        tags = f",topic={_escape_tag(r.topic)}" + (f",device={_escape_tag(r.device)}" if r.device else "")
        raw = (f'payload_b64="{base64.b64encode(r.payload).decode()}",qos={r.qos}i,retain={"true" if r.retain else "false"},'
               f"seq={r.seq}i")
        if r.props:
            raw += f',props="{_escape_str(r.props)}"'
        lines.append(f"{RAW}{tags} {raw} {r.ts_ns}")
        values = flatten(r.payload)
        if values:
            fields = ",".join(f"{_escape_tag(name)}={float(v)!r}" for name, v in values)
            lines.append(f"{FIELDS}{tags} {fields} {r.ts_ns}")
    return lines


def _time(ns: int | None, default: str) -> str:
    return f"time(v: {int(ns)})" if ns is not None else default


def _flux_regex(topic_filter: str) -> str:
    return "/" + filter_regex(topic_filter).replace("/", "\\/") + "/"


def _filters(topic: str | None, device: str | None) -> str:
    out = ""
    if topic:
        out += (f"\n  |> filter(fn: (r) => r.topic =~ {_flux_regex(topic)})" if has_wildcard(topic)
                else f'\n  |> filter(fn: (r) => r.topic == "{_escape_str(topic)}")')
    if device:
        out += f'\n  |> filter(fn: (r) => r.device == "{_escape_str(device)}")'
    return out


def messages_flux(bucket: str, *, topic: str | None = None, device: str | None = None, start: int | None = None,
                  stop: int | None = None, limit: int | None = None, newest_first: bool = False) -> str:
    q = (f'from(bucket: "{_escape_str(bucket)}")\n  |> range(start: {_time(start, "0")}, stop: {_time(stop, "now()")})'
         f'\n  |> filter(fn: (r) => r._measurement == "{RAW}")' + _filters(topic, device) +
         '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n  |> group()'
         f'\n  |> sort(columns: ["_time"], desc: {"true" if newest_first else "false"})')
    if limit is not None:
        q += f"\n  |> limit(n: {int(limit)})"
    return q


def series_flux(bucket: str, field: str, *, topic: str | None = None, device: str | None = None,
                start: int | None = None, stop: int | None = None, every_s: float | None = None,
                agg: str = "mean") -> str:
    q = (f'from(bucket: "{_escape_str(bucket)}")\n  |> range(start: {_time(start, "0")}, stop: {_time(stop, "now()")})'
         f'\n  |> filter(fn: (r) => r._measurement == "{FIELDS}" and r._field == "{_escape_str(field)}")'
         + _filters(topic, device) + '\n  |> group(columns: ["device"])')
    if every_s is not None:
        q += f"\n  |> aggregateWindow(every: {max(1, int(every_s * 1000))}ms, fn: {_FLUX_AGG[agg]}, createEmpty: false)"
    return q


def topics_flux(bucket: str) -> str:
    return (f'from(bucket: "{_escape_str(bucket)}")\n  |> range(start: 0)'
            f'\n  |> filter(fn: (r) => r._measurement == "{RAW}" and r._field == "seq")'
            '\n  |> group(columns: ["topic"])'
            '\n  |> reduce(identity: {messages: 0, first_seen: 0, last_seen: 0, device: ""}, '
            'fn: (r, accumulator) => ({messages: accumulator.messages + 1, '
            'first_seen: if accumulator.first_seen == 0 then int(v: r._time) else accumulator.first_seen, '
            'last_seen: int(v: r._time), device: if exists r.device then r.device else ""}))\n  |> group()')


class InfluxStore:
    """Same interface as the DuckDB store; queries answer Arrow tables with the same columns."""

    kind = "influxdb"

    def __init__(self, url: str, token: str, org: str, bucket: str) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.bucket, self.org = bucket, org
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=30_000)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._query = self._client.query_api()
        self._seq = itertools.count(1)

    def take_seq(self) -> int:
        return next(self._seq)

    def index(self, records: list[Record]) -> None:
        return None  # append writes the fields too

    def unindexed(self, limit: int = 5000) -> list[Record]:
        return []

    def wait_indexed(self, timeout: float) -> bool:
        return True

    def append(self, records: list[Record]) -> None:
        if records:
            from influxdb_client.domain.write_precision import WritePrecision

            self._write.write(bucket=self.bucket, org=self.org, record=line_protocol(records),
                              write_precision=WritePrecision.NS)  # type: ignore[arg-type]  # NS is typed as str

    def _table(self, flux: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for table in self._query.query(flux, org=self.org):
            for rec in table.records:
                rows.append(rec.values)
        return rows

    @staticmethod
    def _to_parquet(columns: dict[str, Any]) -> bytes:
        import io

        import pyarrow as pa  # the compose image has it; the local services never load this store
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(pa.table(columns), sink)
        return sink.getvalue()

    def messages(self, **kwargs: Any) -> bytes:
        rows = self._table(messages_flux(self.bucket, **kwargs))
        if kwargs.get("newest_first"):
            rows.reverse()
        import pyarrow as pa

        return self._to_parquet({
            "seq": [int(r.get("seq", 0)) for r in rows],
            "ts": [int(r["_time"].timestamp() * 1e9) for r in rows],
            "topic": [r.get("topic") for r in rows], "device": [r.get("device") for r in rows],
            "payload": [base64.b64decode(r.get("payload_b64", "")) for r in rows],
            "qos": pa.array([int(r.get("qos", 0)) for r in rows], pa.uint8()),
            "retain": [bool(r.get("retain")) for r in rows], "props": [r.get("props") for r in rows],
            "client_id": [None] * len(rows)})

    def series(self, field: str, **kwargs: Any) -> bytes:
        rows = self._table(series_flux(self.bucket, field, **kwargs))
        return self._to_parquet({"ts": [int(r["_time"].timestamp() * 1e9) for r in rows],
                                 "device": [r.get("device") for r in rows], "value": [float(r["_value"]) for r in rows]})

    def topics(self) -> bytes:
        rows = self._table(topics_flux(self.bucket))
        return self._to_parquet({"topic": [r.get("topic") for r in rows], "messages": [r.get("messages") for r in rows],
                         "first_seen": [r.get("first_seen") for r in rows], "last_seen": [r.get("last_seen") for r in rows],
                         "device": [r.get("device") or None for r in rows]})

    def stats(self) -> dict[str, Any]:
        rows = self._table(topics_flux(self.bucket))
        return {"store": self.kind, "bucket": self.bucket, "messages": sum(int(r.get("messages") or 0) for r in rows),
                "topics": len(rows)}

    def import_parquet(self, data: bytes) -> int:
        import io

        import pyarrow.parquet as pq

        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        records = [Record(self.take_seq(), int(r["ts"]), str(r["topic"]), bytes(r["payload"] or b""),
                          int(r.get("qos") or 0), bool(r.get("retain")), r.get("props")) for r in rows]
        self.append(records)
        return len(records)

    def purge(self, before_ns: int) -> int:
        import datetime as dt

        stop = dt.datetime.fromtimestamp(before_ns / 1e9, dt.timezone.utc)
        start = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        for measurement in (RAW, FIELDS):
            self._client.delete_api().delete(start, stop, f'_measurement="{measurement}"', bucket=self.bucket, org=self.org)
        return 0  # InfluxDB does not say how many points a delete removed

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]
