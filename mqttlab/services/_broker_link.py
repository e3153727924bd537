"""The services' own MQTT connection, and the broker figures bridged from mosquitto's ``$SYS`` tree."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..mqtt import set_nodelay
from ._config import ServicesConfig

log = logging.getLogger("mqttlab.services.broker")

#: $SYS topic -> (metric name, kind, help). Counters are mosquitto's totals since start.
SYS_METRICS: dict[str, tuple[str, str, str]] = {
    "$SYS/broker/clients/connected": ("mqttlab_broker_clients_connected", "gauge", "Connected clients"),
    "$SYS/broker/clients/disconnected": ("mqttlab_broker_clients_disconnected", "gauge", "Persistent clients offline"),
    "$SYS/broker/clients/total": ("mqttlab_broker_clients_total", "gauge", "Known clients, online or not"),
    "$SYS/broker/clients/maximum": ("mqttlab_broker_clients_maximum", "gauge", "Most clients connected at once"),
    "$SYS/broker/messages/received": ("mqttlab_broker_messages_received", "counter", "Messages of any type received"),
    "$SYS/broker/messages/sent": ("mqttlab_broker_messages_sent", "counter", "Messages of any type sent"),
    "$SYS/broker/publish/messages/received": ("mqttlab_broker_publish_received", "counter", "PUBLISH received"),
    "$SYS/broker/publish/messages/sent": ("mqttlab_broker_publish_sent", "counter", "PUBLISH sent"),
    "$SYS/broker/publish/messages/dropped": ("mqttlab_broker_publish_dropped", "counter",
                                             "PUBLISH dropped (queue limits, offline QoS 0)"),
    "$SYS/broker/bytes/received": ("mqttlab_broker_bytes_received", "counter", "Bytes received"),
    "$SYS/broker/bytes/sent": ("mqttlab_broker_bytes_sent", "counter", "Bytes sent"),
    "$SYS/broker/store/messages/count": ("mqttlab_broker_stored_messages", "gauge", "Messages held in the store"),
    "$SYS/broker/store/messages/bytes": ("mqttlab_broker_stored_bytes", "gauge", "Bytes held in the store"),
    "$SYS/broker/subscriptions/count": ("mqttlab_broker_subscriptions", "gauge", "Active subscriptions"),
    "$SYS/broker/retained messages/count": ("mqttlab_broker_retained_messages", "gauge", "Retained messages"),
    "$SYS/broker/uptime": ("mqttlab_broker_uptime_seconds", "gauge", "Broker uptime"),
}


class SysCollector(Collector):
    """A Prometheus collector over the latest ``$SYS`` values (no global registry)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.updated: float = 0.0
        self.version: str | None = None

    def observe(self, topic: str, payload: bytes) -> None:
        if topic == "$SYS/broker/version":
            self.version = payload.decode(errors="replace")
            return
        if topic not in SYS_METRICS:
            return
        try:
            self.values[topic] = float(payload.split()[0])
        except (ValueError, IndexError):
            return
        self.updated = time.time()

    def collect(self) -> Iterator[Metric]:
        for topic, value in list(self.values.items()):
            name, kind, doc = SYS_METRICS[topic]
            if kind == "counter":
                yield CounterMetricFamily(name, doc, value=value)
            else:
                yield GaugeMetricFamily(name, doc, value=value)

    def snapshot(self) -> dict[str, float]:
        return {SYS_METRICS[t][0]: v for t, v in self.values.items()}


class BrokerLink:
    """One paho client shared by the services; reconnects on its own, fans messages out by filter."""

    def __init__(self, cfg: ServicesConfig) -> None:
        self.cfg = cfg
        self.sys = SysCollector()
        self.connected = threading.Event()
        self._handlers: list[tuple[str, int, Callable[[mqtt.MQTTMessage], None]]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"mqttlab-services-{cfg.lab_id}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(cfg.broker_user, cfg.broker_password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_socket_open = lambda c, u, s: set_nodelay(s)
        self.client.message_callback_add("$SYS/#", self._on_sys)
        self.client.reconnect_delay_set(0.05, 2.0)  # type: ignore[arg-type]  # paho accepts float seconds

    def subscribe(self, topic_filter: str, qos: int, handler: Callable[[mqtt.MQTTMessage], None]) -> None:
        """Route messages matching ``topic_filter`` to ``handler``; (re)subscribed on every connect."""
        self._handlers.append((topic_filter, qos, handler))

        def cb(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                handler(msg)
            except Exception:  # a failing handler must not kill paho's network thread
                log.exception("handler for %s failed", topic_filter)

        self.client.message_callback_add(topic_filter, cb)
        if self.connected.is_set():
            self.client.subscribe(topic_filter, qos)

    def start(self) -> None:
        self.client.connect_async(self.cfg.broker_host, self.cfg.broker_port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the services' connection: %s", rc)
            return
        client.subscribe("$SYS/#", 0)
        for topic_filter, qos, _ in self._handlers:
            client.subscribe(topic_filter, qos)
        self.connected.set()
        log.info("connected to broker", extra={"broker": f"{self.cfg.broker_host}:{self.cfg.broker_port}"})

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from broker: %s", rc)

    def _on_sys(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.sys.observe(msg.topic, bytes(msg.payload))
