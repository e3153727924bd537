"""Connects the rule engine to the services' broker link: subscriptions, properties, events, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..rules._api import OutputTap
from ..rules._events import from_mosquitto_log
from ..rules._runtime import METRIC_KEYS, RuleEngine
from ..rules._store import RuleStore
from ._broker_link import BrokerLink
from ._fast_link import FastLink


class RuleCollector(Collector):
    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        for key in METRIC_KEYS:
            family = CounterMetricFamily("emqx_rule_" + key.replace(".", "_"), f"rule metric {key}", labels=["id"])
            for rid, rule in list(self.engine.live.items()):
                family.add_metric([rid], rule.metrics.counts[key])
            yield family


_WIRE_TO_EMQX = {"user_property": "User-Property", "content_type": "Content-Type", "response_topic": "Response-Topic",
                 "correlation_data": "Correlation-Data", "message_expiry": "Message-Expiry-Interval",
                 "payload_format": "Payload-Format-Indicator"}
_EMQX_TO_WIRE = {v: k for k, v in _WIRE_TO_EMQX.items()}


def wire_props_to_emqx(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in props.items():
        emqx_name = _WIRE_TO_EMQX.get(name)
        if emqx_name is None:
            continue
        if name == "user_property":
            value = dict(value)
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        out[emqx_name] = value
    return out


def emqx_to_wire_props(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in props.items():
        wire = _EMQX_TO_WIRE.get(name)
        if wire is None:
            continue
        if wire == "user_property":
            out[wire] = [(str(k), str(v)) for k, v in value]
        elif wire in ("message_expiry", "payload_format"):
            out[wire] = int(value)
        elif wire == "correlation_data":
            out[wire] = str(value).encode()
        else:
            out[wire] = str(value)
    return out


def wire_rules(link: BrokerLink, fast: FastLink, state_dir: Path) -> tuple[RuleEngine, OutputTap]:
    """Rules read and write message traffic on ``fast``; broker events come from mosquitto's log via ``link``."""
    subscribed: set[str] = set()

    def on_message(topic: str, payload: bytes, qos: int, retain: bool, props: dict[str, Any]) -> None:
        engine.on_message(topic, payload, qos, retain, wire_props_to_emqx(props))

    def want(filters: list[str]) -> None:
        for topic_filter in filters:
            if topic_filter not in subscribed:
                subscribed.add(topic_filter)
                fast.subscribe(topic_filter, 1, on_message)

    def publish(topic: str, payload: bytes, qos: int, retain: bool, props: dict[str, Any]) -> None:
        fast.publish(topic, payload, qos, retain, emqx_to_wire_props(props))

    tap = OutputTap()
    engine = RuleEngine(RuleStore(state_dir / "services" / "rules.json"), publish, want, on_output=tap)

    def on_log(msg: mqtt.MQTTMessage) -> None:
        event = from_mosquitto_log(msg.topic, bytes(msg.payload))
        if event is not None:
            engine.on_event(event)

    link.subscribe("$SYS/broker/log/#", 0, on_log)
    return engine, tap
