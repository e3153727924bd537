"""Collect messages on a paho client and wait for conditions on them (no sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from ..errors import ReadinessTimeout


@dataclass(frozen=True)
class Subscription:
    """What the broker granted: one reason code per filter."""

    reason_codes: list[ReasonCode]

    @property
    def granted(self) -> bool:
        return all(not rc.is_failure for rc in self.reason_codes)

    @property
    def values(self) -> list[int]:
        return [rc.value for rc in self.reason_codes]


def subscribe_and_wait(
    client: mqtt.Client, topic: str | list[tuple[str, int]], qos: int = 0, timeout: float = 5.0
) -> Subscription:
    """Subscribe and wait for the SUBACK; returns the granted reason codes (0x80/0x87 = refused)."""
    done = threading.Event()
    box: dict[int, list[ReasonCode]] = {}
    previous: Any = client.on_subscribe

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        box[mid] = rcs
        done.set()
        if previous is not None:
            previous(c, u, mid, rcs, props)

    client.on_subscribe = on_subscribe
    try:
        if isinstance(topic, str):
            _rc, mid = client.subscribe(topic, qos)
        else:
            _rc, mid = client.subscribe(topic)
        if not done.wait(timeout) or mid not in box:
            raise ReadinessTimeout(f"no SUBACK for {topic!r} within {timeout}s; seen SUBACKs for mids {list(box)}")
    finally:
        client.on_subscribe = previous
    return Subscription(box[mid])


class MessageCollector:
    """Records every message a client receives (on the filters you subscribe) and waits on them."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.messages: list[mqtt.MQTTMessage] = []
        self._cond = threading.Condition()
        client.on_message = self._on_message

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def subscribe(self, topic: str, qos: int = 0, timeout: float = 5.0) -> Subscription:
        return subscribe_and_wait(self.client, topic, qos, timeout)

    def wait_for(
        self, predicate: Callable[[list[mqtt.MQTTMessage]], bool], timeout: float = 5.0, what: str = "messages"
    ) -> list[mqtt.MQTTMessage]:
        """Wait until ``predicate(messages)`` holds; the timeout error lists what arrived."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.messages), timeout):
                seen = [(m.topic, m.payload[:40]) for m in self.messages[-10:]]
                raise ReadinessTimeout(
                    f"timed out after {timeout}s waiting for {what}; {len(self.messages)} received, last: {seen}"
                )
            return list(self.messages)

    def wait_count(self, n: int, timeout: float = 5.0) -> list[mqtt.MQTTMessage]:
        return self.wait_for(lambda msgs: len(msgs) >= n, timeout, what=f"{n} messages")

    def wait_topic(self, topic: str, timeout: float = 5.0) -> mqtt.MQTTMessage:
        msgs = self.wait_for(lambda ms: any(m.topic == topic for m in ms), timeout, what=f"a message on {topic}")
        return next(m for m in msgs if m.topic == topic)

    def topics(self) -> list[str]:
        with self._cond:
            return [m.topic for m in self.messages]
