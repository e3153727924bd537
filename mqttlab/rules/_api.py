"""EMQX 5.8 compatible rules REST API: same paths, shapes and status codes."""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ._engine import rule_test
from ._errors import NoMatch, RuleRuntimeError, RuleSqlError
from ._events import EVENT_TYPES, LOCAL_EVENTS, NODE, defaults
from ._runtime import METRIC_KEYS, Metrics, RuleEngine, RuleError


def _err(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _tested(sql: str, context: Any, rule_id: str | None = None) -> JSONResponse:
    """``rule_test`` as an HTTP answer: 200 output, 412 no match, 400 parse or runtime error (EMQX's shapes)."""
    try:
        return JSONResponse(rule_test(sql, context, rule_id))
    except NoMatch:
        return _err(412, "NOT_MATCH", "SQL Not Match")
    except RuleSqlError as exc:
        return _err(400, "BAD_REQUEST", sql_error_message(exc))
    except RuleRuntimeError as exc:
        return _err(400, "BAD_REQUEST", runtime_error_message(exc))


async def _json_body(request: Request) -> Any:
    if "application/json" not in request.headers.get("content-type", ""):
        return _err(415, "UNSUPPORTED_MEDIA_TYPE", "content-type:application/json Required")
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError):
        return _err(400, "BAD_REQUEST", "request body is not valid JSON")


def sql_error_message(exc: RuleSqlError) -> str:
    """EMQX says ``<line>: syntax error before: <token>``; we keep "syntax error" and add the column and why."""
    return f"syntax error at line {exc.line}, column {exc.column}: {exc.reason}"


def runtime_error_message(exc: RuleRuntimeError) -> str:
    """EMQX's shape for evaluation errors (``{"select_and_transform_error":"decode_json_failed"}``);
    context problems (unknown event type, bad fields) are plain text, as in EMQX."""
    if exc.stage is None:
        return exc.message
    return exc.emqx_message()


class OutputTap:
    """The last outputs of every rule, numbered, for ``lab.rules.tail``."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.outputs: dict[str, deque[tuple[int, float, Any]]] = {}
        self.seq = 0
        self._lock = threading.Lock()

    def __call__(self, rule_id: str, output: Any) -> None:
        import time

        with self._lock:
            self.seq += 1
            self.outputs.setdefault(rule_id, deque(maxlen=self.size)).append((self.seq, time.time(), output))

    def since(self, rule_id: str, after: int) -> list[dict[str, Any]]:
        with self._lock:
            return [{"seq": s, "at": t, "output": o} for s, t, o in self.outputs.get(rule_id, ()) if s > after]


def rules_router(engine: RuleEngine, tap: OutputTap) -> APIRouter:
    router = APIRouter(tags=["rules"])

    @router.post("/api/v5/rule_test", summary="Dry-run SQL against a context (200 output, 400 error, 412 no match)",
                 openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}})
    async def test_sql(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str) or not isinstance(
                body.get("context", {}), dict):
            return _err(400, "BAD_REQUEST", "body must be {\"sql\": string, \"context\": object}")
        return _tested(body["sql"], body.get("context", {}))

    @router.get("/api/v5/rules", summary="List rules (EMQX filters and paging)")
    def list_rules(enable: bool | None = None, like_id: str | None = None, like_from: str | None = None,
                   like_description: str | None = None, match_from: str | None = None,
                   from_: str | None = Query(None, alias="from"), page: int = Query(1, ge=1),
                   limit: int = Query(100, ge=1, le=10000)) -> dict[str, Any]:
        from ._topic import topic_matches

        rows = [r.record for r in engine.live.values()]
        if enable is not None:
            rows = [r for r in rows if r["enable"] == enable]
        if like_id:
            rows = [r for r in rows if like_id in r["id"]]
        if like_description:
            rows = [r for r in rows if like_description in r.get("description", "")]
        if from_:
            rows = [r for r in rows if from_ in r["from"]]
        if like_from:
            rows = [r for r in rows if any(like_from in f for f in r["from"])]
        if match_from:
            rows = [r for r in rows if any(topic_matches(match_from, f) for f in r["from"])]
        start = (page - 1) * limit
        return {"data": rows[start: start + limit],
                "meta": {"page": page, "limit": limit, "count": len(rows), "hasnext": start + limit < len(rows)}}

    async def _save(request: Request, rule_id: str | None, create: bool) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        try:
            record = engine.upsert(body, rule_id, create=create)
        except RuleSqlError as exc:
            return _err(400, "BAD_REQUEST", sql_error_message(exc))
        except RuleError as exc:
            return _err(400, "BAD_REQUEST", str(exc))
        return JSONResponse(record, status_code=201 if create else 200)

    body_schema = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}}

    @router.post("/api/v5/rules", summary="Create a rule (201)", openapi_extra=body_schema)
    async def create_rule(request: Request) -> Response:
        return await _save(request, None, True)

    @router.put("/api/v5/rules/{rule_id}", summary="Create or update a rule", openapi_extra=body_schema)
    async def put_rule(rule_id: str, request: Request) -> Response:
        return await _save(request, rule_id, False)

    @router.get("/api/v5/rules/{rule_id}")
    def get_rule(rule_id: str) -> Response:
        rule = engine.live.get(rule_id)
        return JSONResponse(rule.record) if rule else _err(404, "NOT_FOUND", "Rule Id Not Found")

    @router.delete("/api/v5/rules/{rule_id}", status_code=204)
    def delete_rule(rule_id: str) -> Response:
        return Response(status_code=204) if engine.delete(rule_id) else _err(404, "NOT_FOUND", "Rule Id Not Found")

    @router.get("/api/v5/rules/{rule_id}/metrics")
    def rule_metrics(rule_id: str) -> Response:
        rule = engine.live.get(rule_id)
        if rule is None:
            return _err(404, "NOT_FOUND", "Rule Id Not Found")
        view = rule.metrics.view()
        return JSONResponse({"id": rule_id, "metrics": view, "node_metrics": [{"node": NODE, "metrics": view}]})

    @router.put("/api/v5/rules/{rule_id}/metrics/reset", status_code=204)
    def reset_metrics(rule_id: str) -> Response:
        rule = engine.live.get(rule_id)
        if rule is None:
            return _err(404, "NOT_FOUND", "Rule Id Not Found")
        rule.metrics = Metrics()
        return Response(status_code=204)

    @router.post("/api/v5/rules/{rule_id}/test", summary="Run a saved rule's SQL on a context",
                 openapi_extra=body_schema)
    async def test_saved(rule_id: str, request: Request) -> Response:
        rule = engine.live.get(rule_id)
        if rule is None:
            return _err(404, "RULE_NOT_FOUND", "Rule Id Not Found")
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        context = body.get("context", {}) if isinstance(body, dict) else {}
        return _tested(rule.record["sql"], context, rule_id)

    @router.get("/api/v5/rule_events", summary="Event types and their columns")
    def rule_events() -> list[dict[str, Any]]:
        return [{"event": f"$events/{e}", "title": {"en": e.replace("_", " ")}, "supported_locally": e in LOCAL_EVENTS,
                 "columns": sorted(defaults(e).keys())} for e in EVENT_TYPES if e != "message_publish"]

    @router.get("/api/rules/{rule_id}/outputs", summary="Recent outputs of a rule (mqttlab extension)")
    def outputs(rule_id: str, after: int = 0) -> Response:
        if rule_id not in engine.live:
            return _err(404, "NOT_FOUND", "Rule Id Not Found")
        return JSONResponse(tap.since(rule_id, after))

    return router


def prometheus_text(engine: RuleEngine) -> str:
    """Rule counters in EMQX's data_integration exposition names."""
    lines = []
    for key in METRIC_KEYS:
        name = "emqx_rule_" + re.sub(r"[^a-z0-9]+", "_", key)
        lines.append(f"# TYPE {name} counter")
        for rid, rule in engine.live.items():
            lines.append(f'{name}{{id="{rid}"}} {rule.metrics.counts[key]}')
    return "\n".join(lines) + "\n"
