"""HTTP API of the twin service (AWS IoT data-plane shapes), mounted on the services app."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ._service import TwinService

_NAME_Q = Query(None, description="Named shadow; omit for the classic shadow", max_length=64)


def twins_router(service: TwinService, timeout: float = 10.0) -> APIRouter:
    router = APIRouter(tags=["twins"])

    async def run(thing: str, name: str | None, op: str, payload: bytes = b"") -> JSONResponse:
        fut = service.submit(thing, name, op, payload)
        code, doc = await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
        return JSONResponse(doc, status_code=code)

    @router.get("/things/{thing}/shadow", summary="GetThingShadow")
    async def get_shadow(thing: str, name: str | None = _NAME_Q) -> JSONResponse:
        return await run(thing, name, "get")

    @router.post("/things/{thing}/shadow", summary="UpdateThingShadow (body: {state, clientToken?, version?})",
                 openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}},
                                                "required": True}})
    async def update_shadow(thing: str, request: Request, name: str | None = _NAME_Q) -> JSONResponse:
        return await run(thing, name, "update", await request.body())

    @router.delete("/things/{thing}/shadow", summary="DeleteThingShadow")
    async def delete_shadow(thing: str, name: str | None = _NAME_Q) -> JSONResponse:
        return await run(thing, name, "delete")

    @router.get("/api/twins", summary="Every existing shadow: thing, shadow name, version, timestamp")
    def list_shadows(thing: str | None = Query(None, max_length=128)) -> list[dict[str, Any]]:
        return service.store.list_shadows(thing)

    @router.get("/api/things/shadow/ListNamedShadowsForThing/{thing}", summary="ListNamedShadowsForThing")
    def list_named(thing: str) -> dict[str, Any]:
        names = [s["shadow"] for s in service.store.list_shadows(thing) if s["shadow"]]
        return {"results": names, "timestamp": _now()}

    @router.get("/api/twins/{thing}/history", summary="Every accepted version of a shadow, oldest first")
    def history(thing: str, name: str | None = _NAME_Q) -> list[dict[str, Any]]:
        return service.store.history(thing, name or "")

    return router


def _now() -> int:
    return int(time.time())


