"""Connects the rule engine to the services' broker link: subscriptions, properties, events, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..rules._api import OutputTap
from ..rules._events import from_mosquitto_log
from ..rules._runtime import METRIC_KEYS, RuleEngine
from ..rules._store import RuleStore
from ._broker_link import BrokerLink

_NAMES = {"UserProperty": "User-Property", "ContentType": "Content-Type", "ResponseTopic": "Response-Topic",
          "CorrelationData": "Correlation-Data", "MessageExpiryInterval": "Message-Expiry-Interval",
          "PayloadFormatIndicator": "Payload-Format-Indicator"}
_PAHO = {v: k for k, v in _NAMES.items()}


def props_to_emqx(props: Properties | None) -> dict[str, Any]:
    """paho PUBLISH properties as EMQX's ``pub_props`` (``User-Property`` is a map)."""
    if props is None:
        return {}
    out: dict[str, Any] = {}
    for paho_name, emqx_name in _NAMES.items():
        if hasattr(props, paho_name):
            value = getattr(props, paho_name)
            if paho_name == "UserProperty":
                value = dict(value)
            elif isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            out[emqx_name] = value
    return out


def emqx_to_props(props: dict[str, Any]) -> Properties | None:
    if not props:
        return None
    out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in props.items():
        paho_name = _PAHO.get(name)
        if paho_name is None:
            continue
        if paho_name == "UserProperty":
            out.UserProperty = [(str(k), str(v)) for k, v in value]
        elif paho_name in ("MessageExpiryInterval", "PayloadFormatIndicator"):
            setattr(out, paho_name, int(value))
        elif paho_name == "CorrelationData":
            out.CorrelationData = str(value).encode()
        else:
            setattr(out, paho_name, str(value))
    return out


class RuleCollector(Collector):
    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        for key in METRIC_KEYS:
            family = CounterMetricFamily("emqx_rule_" + key.replace(".", "_"), f"rule metric {key}", labels=["id"])
            for rid, rule in list(self.engine.live.items()):
                family.add_metric([rid], rule.metrics.counts[key])
            yield family


def wire_rules(link: BrokerLink, state_dir: Path) -> tuple[RuleEngine, OutputTap]:
    subscribed: set[str] = set()
    last: list[Any] = [None]

    def on_message(msg: mqtt.MQTTMessage) -> None:
        if msg is last[0]:  # paho calls every matching filter's callback with the same message
            return
        last[0] = msg
        engine.on_message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                          props_to_emqx(getattr(msg, "properties", None)))

    def want(filters: list[str]) -> None:
        for topic_filter in filters:
            if topic_filter not in subscribed:
                subscribed.add(topic_filter)
                link.subscribe(topic_filter, 1, on_message)

    def publish(topic: str, payload: bytes, qos: int, retain: bool, props: dict[str, Any]) -> None:
        link.client.publish(topic, payload, qos=qos, retain=retain, properties=emqx_to_props(props))

    tap = OutputTap()
    engine = RuleEngine(RuleStore(state_dir / "services" / "rules.json"), publish, want, on_output=tap)

    def on_log(msg: mqtt.MQTTMessage) -> None:
        event = from_mosquitto_log(msg.topic, bytes(msg.payload))
        if event is not None:
            engine.on_event(event)

    link.subscribe("$SYS/broker/log/#", 0, on_log)
    return engine, tap
