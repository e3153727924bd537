"""The capabilities the services process hosts, each with one lifecycle: start, stop, health, HTTP routes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ._broker_link import BrokerLink
from ._config import ServicesConfig


class Component:
    """Base: override what applies."""

    name = "component"

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def healthy(self) -> bool:
        return True

    def routers(self) -> list[APIRouter]:
        return []


class TwinsComponent(Component):
    """AWS shadow topics on the broker plus the twins HTTP API."""

    name = "twins"

    def __init__(self, cfg: ServicesConfig, link: BrokerLink, registry: CollectorRegistry) -> None:
        from ..twins._service import FILTERS, TwinService
        from ..twins._store import ShadowStore

        self.service = TwinService(ShadowStore(Path(cfg.state_dir) / "services" / "twins.db"),
                                   lambda topic, payload: _publish(link, topic, payload))
        for topic_filter in FILTERS:
            link.subscribe(topic_filter, 1, lambda msg: self.service.on_mqtt(msg.topic, bytes(msg.payload)))
        gauge = Gauge("mqttlab_twins_requests", "Shadow requests handled, by outcome", ["outcome"], registry=registry)
        for outcome in ("accepted", "rejected", "errors"):
            gauge.labels(outcome).set_function(_counter(self.service.counters, outcome))

    def start(self) -> None:
        self.service.start()

    def stop(self) -> None:
        self.service.stop()
        self.service.store.close()

    def routers(self) -> list[APIRouter]:
        from ..twins._api import twins_router

        return [twins_router(self.service)]


class RulesComponent(Component):
    """The EMQX-compatible rule engine: its own fast broker connection, REST API and metrics."""

    name = "rules"

    def __init__(self, cfg: ServicesConfig, link: BrokerLink, registry: CollectorRegistry) -> None:
        from ._fast_link import FastLink
        from ._rules_wiring import RuleCollector, wire_rules

        self.fast = FastLink(cfg, "rules")
        self.engine, self.tap = wire_rules(link, self.fast, Path(cfg.state_dir))
        registry.register(RuleCollector(self.engine))

    def start(self) -> None:
        self.fast.start()

    def stop(self) -> None:
        self.fast.stop()
        self.engine.close()

    def healthy(self) -> bool:
        return self.fast.connected.is_set()

    def routers(self) -> list[APIRouter]:
        from ..rules._api import prometheus_text, rules_router

        extra = APIRouter(tags=["metrics"])

        @extra.get("/api/v5/prometheus/data_integration", summary="Rule metrics at EMQX's path")
        def data_integration() -> Response:
            return Response(prometheus_text(self.engine), media_type=CONTENT_TYPE_LATEST)

        return [rules_router(self.engine, self.tap), extra]


class HistoryComponent(Component):
    """The recorder (its own persistent session) and the history store and API."""

    name = "history"

    def __init__(self, cfg: ServicesConfig, link: BrokerLink, registry: CollectorRegistry) -> None:
        from ..aio._conn import ConnectOptions
        from ..history._recorder import Recorder

        self.cfg = cfg
        if cfg.history == "influxdb":
            from ..history._influx_store import InfluxStore

            self.store: Any = InfluxStore(cfg.influx_url or "", cfg.influx_token or "", cfg.influx_org or "",
                                          cfg.influx_bucket or "")
        else:
            from ..history._duckdb_store import DuckDBStore

            self.store = DuckDBStore(Path(cfg.state_dir) / "services" / "history.duckdb")
        opts = ConnectOptions(cfg.broker_host, cfg.broker_port, f"mqttlab-recorder-{cfg.lab_id}", cfg.broker_user,
                              cfg.broker_password, clean=False, session_expiry=7 * 86_400, keepalive=30)
        self.recorder = Recorder(self.store, opts)
        stats = self.recorder.stats
        gauge = Gauge("mqttlab_recorder_messages", "Messages received / written by the recorder", ["stage"],
                      registry=registry)
        gauge.labels("received").set_function(lambda: float(stats.received))
        gauge.labels("written").set_function(lambda: float(stats.written))
        gauge.labels("pending").set_function(lambda: float(self.recorder.pending()))
        self._stop = threading.Event()
        self._retention = threading.Thread(target=self._purge_loop, name="history-retention", daemon=True)

    def _purge_loop(self) -> None:
        import time

        while not self._stop.wait(60):
            try:
                self.store.purge(time.time_ns() - int(self.cfg.history_retention_s * 1e9))
            except Exception:  # retention is housekeeping: log and try again next minute
                logging.getLogger("mqttlab.services.history").exception("retention purge failed")

    def start(self) -> None:
        self.recorder.start()
        self._retention.start()

    def stop(self) -> None:
        self._stop.set()
        self.recorder.stop()
        self.store.close()

    def healthy(self) -> bool:
        return self.recorder.connected.is_set()

    def routers(self) -> list[APIRouter]:
        from ..history._api import history_router

        return [history_router(self.store, self.recorder)]


def _publish(link: BrokerLink, topic: str, payload: bytes) -> None:
    link.client.publish(topic, payload, qos=1)


def _counter(counters: dict[str, int], key: str) -> Callable[[], float]:
    return lambda: float(counters[key])


def build_components(cfg: ServicesConfig, link: BrokerLink, registry: CollectorRegistry) -> list[Any]:
    components: list[Component] = [TwinsComponent(cfg, link, registry)]
    if cfg.history != "off":
        components.append(HistoryComponent(cfg, link, registry))
    if cfg.rules_enabled:
        components.append(RulesComponent(cfg, link, registry))
    return components
