"""A reactive device for the shadow protocol: applies each delta it receives and reports back.

A minimal device until fleets land; fleets reuse it. It speaks only MQTT, as real firmware would.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)
Apply = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


class ShadowDevice:
    """Subscribe to ``update/delta`` on a device's connected client and converge on desired.

    ``apply(state, delta)`` may change what the device reports (e.g. clamp a set-point); it returns
    the fields to report. By default the device accepts the delta as it is.
    """

    def __init__(self, client: mqtt.Client, thing: str, *, initial: dict[str, Any] | None = None,
                 apply: Apply | None = None, shadow_name: str | None = None) -> None:
        self.client, self.thing = client, thing
        self.state: dict[str, Any] = dict(initial or {})
        self.applied: list[dict[str, Any]] = []
        self._apply = apply or (lambda state, delta: delta)
        self._lock = threading.Lock()
        prefix = f"$aws/things/{thing}/shadow" + (f"/name/{shadow_name}" if shadow_name else "")
        self._update, self._delta = f"{prefix}/update", f"{prefix}/update/delta"
        client.message_callback_add(self._delta, self._on_delta)
        client.subscribe(self._delta, qos=1)

    def report(self, fields: dict[str, Any] | None = None) -> None:
        """Publish reported state (all of it by default)."""
        with self._lock:
            body = {"state": {"reported": fields if fields is not None else self.state}}
        self.client.publish(self._update, json.dumps(body), qos=1)

    def _on_delta(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            delta = json.loads(msg.payload)["state"]
            with self._lock:
                fields = self._apply(self.state, delta)
                _merge(self.state, fields)
                self.applied.append(delta)
            self.report(fields)
        except Exception:  # a bad delta must not kill paho's network thread
            log.exception("device %s could not apply a delta", self.thing)
