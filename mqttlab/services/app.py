"""The services process's HTTP app: health, status, Prometheus metrics; capability routers plug in here."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, WebSocket
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .. import __version__
from ._broker_link import BrokerLink
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

    from pathlib import Path

    from ..twins._api import twins_router
    from ..twins._service import FILTERS, TwinService
    from ..twins._store import ShadowStore

    twins = TwinService(ShadowStore(Path(cfg.state_dir) / "services" / "twins.db"),
                        lambda topic, payload: _publish(link, topic, payload))
    for topic_filter in FILTERS:
        link.subscribe(topic_filter, 1, lambda msg: twins.on_mqtt(msg.topic, bytes(msg.payload)))
    twin_requests = Gauge("mqttlab_twins_requests", "Shadow requests handled, by outcome", ["outcome"],
                          registry=registry)
    for outcome in ("accepted", "rejected", "errors"):
        twin_requests.labels(outcome).set_function(_counter(twins.counters, outcome))

    from ..rules._api import prometheus_text, rules_router
    from ._fast_link import FastLink
    from ._rules_wiring import RuleCollector, wire_rules

    fast = FastLink(cfg, "rules")
    rules, tap = wire_rules(link, fast, Path(cfg.state_dir))
    registry.register(RuleCollector(rules))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        twins.start()
        link.start()
        fast.start()
        log.info("services started", extra={"pid": os.getpid(), "api_port": cfg.api_port})
        yield
        fast.stop()
        link.stop()
        twins.stop()
        twins.store.close()
        rules.close()
        log.info("services stopped")

    app = FastAPI(title="mqttlab services", version=__version__, lifespan=lifespan,
                  description="Twins, rules, history and metrics of an mqttlab stack.")
    app.state.cfg, app.state.link, app.state.registry = cfg, link, registry
    install_error_handlers(app)
    auth = Depends(require_api_key(cfg.api_key, cfg.api_secret))

    def health_body() -> tuple[int, dict[str, Any]]:
        ok = link.connected.is_set() and fast.connected.is_set()
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

    app.include_router(twins_router(twins), dependencies=[auth])
    app.include_router(rules_router(rules, tap), dependencies=[auth])

    @app.get("/api/v5/prometheus/data_integration", tags=["metrics"], summary="Rule metrics at EMQX's path")
    def data_integration() -> Response:
        return Response(prometheus_text(rules), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/mqtt")
    async def mqtt_over_websocket(websocket: WebSocket) -> None:
        await bridge(websocket, cfg.broker_host, cfg.broker_port)

    return app


def _publish(link: BrokerLink, topic: str, payload: bytes) -> None:
    link.client.publish(topic, payload, qos=1)


def _counter(counters: dict[str, int], key: str) -> Callable[[], float]:
    return lambda: float(counters[key])
