"""The services process's HTTP app: health, status, Prometheus metrics; capability routers plug in here."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, WebSocket
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .. import __version__
from ._broker_link import BrokerLink
from ._components import build_components
from ._config import ServicesConfig
from ._http import install_error_handlers, require_api_key
from ._ws_bridge import bridge

log = logging.getLogger("mqttlab.services")


def create_app(cfg: ServicesConfig, link: BrokerLink | None = None) -> FastAPI:
    """Build the app. ``link`` is injectable so tests can drive the app against any broker."""
    link = link or BrokerLink(cfg)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(link.sys)
    started = time.time()
    Gauge("mqttlab_services_up", "1 while the services process runs", registry=registry).set(1)
    broker_connected = Gauge("mqttlab_services_broker_connected", "1 while connected to the broker", registry=registry)
    broker_connected.set_function(lambda: 1.0 if link.connected.is_set() else 0.0)

    components = build_components(cfg, link, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for component in components:
            component.start()
        link.start()
        log.info("services started", extra={"pid": os.getpid(), "api_port": cfg.api_port,
                                            "components": [c.name for c in components]})
        yield
        for component in reversed(components):
            component.stop()
        link.stop()
        log.info("services stopped")

    app = FastAPI(title="mqttlab services", version=__version__, lifespan=lifespan,
                  description="Twins, rules, history and metrics of an mqttlab stack.")
    app.state.cfg, app.state.link, app.state.registry = cfg, link, registry
    install_error_handlers(app)
    auth = Depends(require_api_key(cfg.api_key, cfg.api_secret))

    def health_body() -> tuple[int, dict[str, Any]]:
        ok = link.connected.is_set() and all(c.healthy() for c in components)
        return (200 if ok else 503), {"status": "ok" if ok else "degraded",
                                      "broker": "connected" if ok else "disconnected"}

    @app.get("/health", tags=["health"], summary="200 when the services run and reach the broker, else 503")
    def health() -> JSONResponse:
        status, body = health_body()
        return JSONResponse(body, status_code=status)

    @app.get("/status", tags=["health"], summary="EMQX-compatible health path")
    def status_alias() -> JSONResponse:
        return health()

    @app.get("/api/status", tags=["status"], dependencies=[auth])
    def status() -> dict[str, Any]:
        _code, body = health_body()
        return {**body, "lab_id": cfg.lab_id, "backend": cfg.backend, "version": __version__,
                "uptime_s": round(time.time() - started, 3), "pid": os.getpid(),
                "broker_version": link.sys.version, "broker_metrics": link.sys.snapshot()}

    @app.get("/metrics", tags=["metrics"], summary="Prometheus exposition of broker and service figures")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v5/prometheus/stats", tags=["metrics"], summary="The same, at EMQX's path")
    def metrics_emqx_path() -> Response:
        return metrics()

    for component in components:
        for router in component.routers():
            metrics_only = all(getattr(r, "path", "").startswith("/api/v5/prometheus") for r in router.routes)
            app.include_router(router, dependencies=[] if metrics_only else [auth])

    @app.websocket("/mqtt")
    async def mqtt_over_websocket(websocket: WebSocket) -> None:
        await bridge(websocket, cfg.broker_host, cfg.broker_port)

    return app

