"""History over HTTP: queries answered as Parquet (written by the store), stats, and imports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ..errors import ConfigError
from ._times import to_interval_s, to_ns

PARQUET = "application/vnd.apache.parquet"


def _parquet(data: bytes) -> Response:
    return Response(data, media_type=PARQUET)


def _bad(exc: ConfigError) -> JSONResponse:
    return JSONResponse({"code": "BAD_REQUEST", "message": exc.message, "hint": exc.hint}, status_code=400)


def history_router(store: Any, recorder: Any) -> APIRouter:
    router = APIRouter(tags=["history"])

    @router.get("/api/history/messages", summary="Recorded messages (Parquet), oldest first")
    def messages(topic: str | None = None, device: str | None = None, start: str | None = None,
                 stop: str | None = None, limit: int | None = Query(None, ge=1, le=10_000_000),
                 newest: bool = Query(False, description="with limit: the newest N (still in recorded order)")
                 ) -> Response:
        try:
            table = store.messages(topic=topic, device=device, start=to_ns(start), stop=to_ns(stop), limit=limit,
                                   newest_first=newest)
        except ConfigError as exc:
            return _bad(exc)
        return _parquet(table)

    @router.get("/api/history/series", summary="One numeric field over time (Parquet), raw or bucketed")
    def series(field: str, topic: str | None = None, device: str | None = None, start: str | None = None,
               stop: str | None = None, every: str | None = None, agg: str = "mean") -> Response:
        from ._duckdb_store import AGGREGATES

        if agg not in AGGREGATES:
            return JSONResponse({"code": "BAD_REQUEST", "message": f"unknown aggregate {agg!r}",
                                 "hint": f"one of {', '.join(AGGREGATES)}"}, status_code=400)
        store.wait_indexed(5.0)  # read your writes: what was recorded before this query is in the index
        try:
            table = store.series(field, topic=topic, device=device, start=to_ns(start), stop=to_ns(stop),
                                 every_s=to_interval_s(every) if every else None, agg=agg)
        except ConfigError as exc:
            return _bad(exc)
        return _parquet(table)

    @router.get("/api/history/topics", summary="Topics with message counts, first and last seen (Parquet)")
    def topics() -> Response:
        return _parquet(store.topics())

    @router.get("/api/history/stats", summary="Store and recorder figures")
    def stats() -> dict[str, Any]:
        return {**store.stats(), "recorder": recorder.stats.as_dict(recorder.pending()),
                "recorder_connected": recorder.connected.is_set(), "recording": recorder.recording}

    @router.put("/api/history/recording", summary="Pause or resume the recorder: body {\"recording\": bool}",
                openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}},
                                               "required": True}})
    async def set_recording(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("recording"), bool):
            return JSONResponse({"code": "BAD_REQUEST", "message": 'body must be {"recording": true|false}'},
                                status_code=400)
        recorder.set_recording(body["recording"])
        return JSONResponse({"recording": recorder.recording})

    @router.post("/api/history/import", summary="Append recorded messages from a Parquet file (ts, topic, payload, ...)",
                 openapi_extra={"requestBody": {"content": {PARQUET: {"schema": {"type": "string", "format": "binary"}}},
                                                "required": True}})
    async def import_messages(request: Request) -> JSONResponse:
        body = await request.body()
        if not body.startswith(b"PAR1"):
            return JSONResponse({"code": "BAD_REQUEST", "message": "the body is not a Parquet file",
                                 "hint": "send what lab.history.export(..., format='parquet') writes"}, status_code=400)
        try:
            count = store.import_parquet(body)
        except Exception as exc:  # a malformed file is the client's problem, not a crash
            return JSONResponse({"code": "BAD_REQUEST", "message": f"cannot import: {exc}",
                                 "hint": "columns ts, topic and payload are required"}, status_code=400)
        return JSONResponse({"imported": count})

    return router
