"""History over HTTP: queries answered as Arrow IPC streams (or JSON), stats, and imports."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ..errors import ConfigError
from ._times import to_interval_s, to_ns

ARROW = "application/vnd.apache.arrow.stream"


def _arrow(table: pa.Table) -> Response:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue(), media_type=ARROW)


def _bad(exc: ConfigError) -> JSONResponse:
    return JSONResponse({"code": "BAD_REQUEST", "message": exc.message, "hint": exc.hint}, status_code=400)


def history_router(store: Any, recorder: Any) -> APIRouter:
    router = APIRouter(tags=["history"])

    @router.get("/api/history/messages", summary="Recorded messages (Arrow IPC stream), oldest first")
    def messages(topic: str | None = None, device: str | None = None, start: str | None = None,
                 stop: str | None = None, limit: int | None = Query(None, ge=1, le=10_000_000),
                 newest: bool = Query(False, description="with limit: the newest N (still in recorded order)")
                 ) -> Response:
        try:
            table = store.messages(topic=topic, device=device, start=to_ns(start), stop=to_ns(stop), limit=limit,
                                   newest_first=newest)
        except ConfigError as exc:
            return _bad(exc)
        return _arrow(table)

    @router.get("/api/history/series", summary="One numeric field over time (Arrow), raw or bucketed")
    def series(field: str, topic: str | None = None, device: str | None = None, start: str | None = None,
               stop: str | None = None, every: str | None = None, agg: str = "mean") -> Response:
        from ._duckdb_store import AGGREGATES

        if agg not in AGGREGATES:
            return JSONResponse({"code": "BAD_REQUEST", "message": f"unknown aggregate {agg!r}",
                                 "hint": f"one of {', '.join(AGGREGATES)}"}, status_code=400)
        try:
            table = store.series(field, topic=topic, device=device, start=to_ns(start), stop=to_ns(stop),
                                 every_s=to_interval_s(every) if every else None, agg=agg)
        except ConfigError as exc:
            return _bad(exc)
        return _arrow(table)

    @router.get("/api/history/topics", summary="Topics with message counts, first and last seen (Arrow)")
    def topics() -> Response:
        return _arrow(store.topics())

    @router.get("/api/history/stats", summary="Store and recorder figures")
    def stats() -> dict[str, Any]:
        return {**store.stats(), "recorder": recorder.stats.as_dict(recorder.pending()),
                "recorder_connected": recorder.connected.is_set()}

    @router.post("/api/history/import", summary="Append recorded messages from an Arrow IPC stream",
                 openapi_extra={"requestBody": {"content": {ARROW: {"schema": {"type": "string", "format": "binary"}}},
                                                "required": True}})
    async def import_messages(request: Request) -> JSONResponse:
        from ._record import Record

        try:
            table = ipc.open_stream(io.BytesIO(await request.body())).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            return JSONResponse({"code": "BAD_REQUEST", "message": f"not an Arrow IPC stream: {exc}"}, status_code=400)
        needed = {"ts", "topic", "payload"}
        if not needed <= set(table.column_names):
            return JSONResponse({"code": "BAD_REQUEST", "message": f"columns {sorted(needed)} are required"},
                                status_code=400)
        rows = table.to_pylist()
        records = []
        for row in rows:
            records.append(Record(store.take_seq(), int(row["ts"]), str(row["topic"]), bytes(row["payload"] or b""),
                                  int(row.get("qos") or 0), bool(row.get("retain")), row.get("props"),
                                  row.get("client_id")))
        store.append(records)
        return JSONResponse({"imported": len(records)})

    return router
