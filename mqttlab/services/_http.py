"""HTTP plumbing shared by the services' routers: API-key auth and EMQX-style error bodies."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.exceptions import HTTPException as StarletteHTTPException

_basic = HTTPBasic(auto_error=False)

_CODES = {400: "BAD_REQUEST", 401: "BAD_API_KEY_OR_SECRET", 403: "FORBIDDEN", 404: "NOT_FOUND",
          405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 412: "PRECONDITION_FAILED", 413: "PAYLOAD_TOO_LARGE",
          415: "UNSUPPORTED_MEDIA_TYPE", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE"}


class ApiFailure(HTTPException):
    """An error answered as ``{"code": ..., "message": ...}`` (EMQX's shape)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(status_code=status, detail={"code": code or _CODES.get(status, "ERROR"), "message": message})


def require_api_key(key: str, secret: str) -> Callable[..., None]:
    """A dependency checking HTTP Basic ``key:secret`` in constant time."""

    def check(credentials: HTTPBasicCredentials | None = Depends(_basic)) -> None:
        ok = credentials is not None and secrets.compare_digest(
            credentials.username.encode(), key.encode()
        ) & secrets.compare_digest(credentials.password.encode(), secret.encode())
        if not ok:
            raise HTTPException(
                status_code=401,
                detail={"code": "BAD_API_KEY_OR_SECRET", "message": "Check api_key/api_secret"},
                headers={"WWW-Authenticate": 'Basic realm="mqttlab"'},
            )

    return check


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as ``{"code", "message"}``; nothing leaks a traceback."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        if not isinstance(detail, dict):
            detail = {"code": _CODES.get(exc.status_code, "ERROR"), "message": str(detail)}
        return JSONResponse(detail, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return JSONResponse({"code": "BAD_REQUEST", "message": "; ".join(parts)}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        import logging

        logging.getLogger("mqttlab.services").exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}, status_code=500)
