"""Event types, their columns, EMQX-style default filling for rule_test, and mosquitto log parsing.

mosquitto has no event hooks for subscribers, but with ``log_dest topic`` it publishes its log on
``$SYS/broker/log/...``; connections, disconnections, subscriptions and unsubscriptions are read
from there. Gaps versus EMQX: no message_delivered/acked/dropped, no client_connack or authn/authz
events, no publisher client id on message_publish (mosquitto does not tell subscribers who published).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

EVENT_TYPES = (
    "message_publish", "client_connected", "client_disconnected", "client_connack", "client_check_authz_complete",
    "client_check_authn_complete", "session_subscribed", "session_unsubscribed", "message_delivered",
    "message_acked", "message_dropped", "delivery_dropped", "schema_validation_failed",
    "message_transformation_failed", "alarm_activated", "alarm_deactivated",
)
#: events the local stack can actually produce (see the module docstring for the gaps)
LOCAL_EVENTS = ("message_publish", "client_connected", "client_disconnected", "session_subscribed",
                "session_unsubscribed")
NODE = "emqx@127.0.0.1"


def event_topic(event_type: str) -> str:
    return f"$events/{event_type}"


def _base(now_ms: int) -> dict[str, Any]:
    return {"node": NODE, "timestamp": now_ms}


#: the context fields EMQX's rule_test schema accepts for these events (others are refused with 400)
CONTEXT_FIELDS = {
    "message_publish": {"event_type", "id", "clientid", "username", "payload", "peerhost", "topic",
                        "publish_received_at", "qos"},
    "client_connected": {"event_type", "clientid", "username", "mountpoint", "peername", "sockname", "proto_name",
                         "proto_ver", "keepalive", "clean_start", "expiry_interval", "is_bridge", "connected_at"},
    "client_disconnected": {"event_type", "clientid", "username", "reason", "peername", "sockname",
                            "disconnected_at"},
}


def defaults(event_type: str, now_ms: int | None = None) -> dict[str, Any]:
    """Columns EMQX fills in for a rule_test context that omits them (so compare results as subsets)."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    client = {"clientid": "c_emqx", "username": "u_emqx", "client_attrs": {"test": "example"}}
    user = {"User-Property": {"foo": "bar"}, "User-Property-Pairs": [{"key": "foo"}, {"value": "bar"}]}
    message = {**client, "event": "message.publish", "id": uuid.uuid4().hex.upper(), "payload": '{"msg": "hello"}',
               "peerhost": "192.168.0.10", "peername": "192.168.0.10:32781", "topic": "t/a", "qos": 1, "flags": {},
               "pub_props": {"Payload-Format-Indicator": 0, "Message-Expiry-Interval": 30, **user},
               "publish_received_at": now}
    table: dict[str, dict[str, Any]] = {
        "message_publish": message,
        "message_delivered": {**message, "from_clientid": "c_emqx_1", "from_username": "u_emqx_1"},
        "message_acked": {**message, "from_clientid": "c_emqx_1", "from_username": "u_emqx_1", "puback_props": {}},
        "message_dropped": {**message, "reason": "no_subscribers"},
        "delivery_dropped": {**message, "reason": "queue_full", "from_clientid": "c_emqx_1",
                             "from_username": "u_emqx_1"},
        "client_connected": {**client, "event": "client.connected", "mountpoint": "undefined",
                             "peername": "192.168.0.10:56431", "sockname": "0.0.0.0:1883", "proto_name": "MQTT",
                             "proto_ver": 5, "keepalive": 60, "clean_start": True, "expiry_interval": 3600,
                             "is_bridge": False, "connected_at": now,
                             "conn_props": {"Session-Expiry-Interval": 7200, "Receive-Maximum": 32, **user}},
        "client_disconnected": {**client, "event": "client.disconnected", "reason": "normal",
                                "peername": "192.168.0.10:56431", "sockname": "0.0.0.0:1883", "proto_name": "MQTT",
                                "proto_ver": 5, "connected_at": now, "disconnected_at": now,
                                "disconn_props": {"Session-Expiry-Interval": 7200,
                                                  "Reason-String": "Redirect to another server",
                                                  "Server Reference": "192.168.22.129", **user}},
        "client_connack": {**client, "reason_code": "success", "peername": "192.168.0.10:56431",
                           "sockname": "0.0.0.0:1883", "proto_name": "MQTT", "proto_ver": 5, "keepalive": 60,
                           "clean_start": True, "expiry_interval": 3600, "conn_props": {}},
        "client_check_authz_complete": {**client, "peerhost": "192.168.0.10", "topic": "t/a", "action": "publish",
                                        "authz_source": "cache", "result": "allow"},
        "client_check_authn_complete": {**client, "peername": "192.168.0.10:56431", "reason_code": "success",
                                        "is_anonymous": False, "is_superuser": False},
        "session_subscribed": {**client, "peerhost": "192.168.0.10", "topic": "t/a", "qos": 1, "sub_props": {}},
        "session_unsubscribed": {**client, "peerhost": "192.168.0.10", "topic": "t/a", "qos": 1,
                                 "unsub_props": {}},
        "schema_validation_failed": {**client, "validation": "myvalidation", "topic": "t/a", "payload": "{}"},
        "message_transformation_failed": {**client, "transformation": "mytransformation", "topic": "t/a",
                                          "payload": "{}"},
        "alarm_activated": {"name": "alarm_name", "details": {}, "message": "boom", "activated_at": now},
        "alarm_deactivated": {"name": "alarm_name", "details": {}, "message": "boom", "activated_at": now,
                              "deactivated_at": now},
    }
    return {**_base(now), **table[event_type], "event_type": event_type}


_CONNECTED = re.compile(r"New client connected from (?P<peer>\S+) as (?P<cid>\S+) \(p(?P<p>\d), c(?P<c>\d), "
                        r"k(?P<k>\d+)(?:, u'(?P<u>[^']*)')?\)")
_DISCONNECTED = re.compile(r"^Client (?P<cid>\S+) (?:disconnected(?:, (?P<why>[^.]+))?|closed its connection)\.?$")
_TIMEOUT = re.compile(r"^Client (?P<cid>\S+) has exceeded timeout, disconnecting\.$")
_SOCKET = re.compile(r"^Socket error on client (?P<cid>\S+), disconnecting\.$")
_SUB = re.compile(r"^(?P<cid>\S+) (?P<qos>\d+) (?P<topic>.+)$")
_UNSUB = re.compile(r"^(?P<cid>\S+) (?P<topic>.+)$")
_PROTO = {"1": ("MQIsdp", 3), "2": ("MQTT", 4), "5": ("MQTT", 5)}


def from_mosquitto_log(topic: str, payload: bytes, now_ms: int | None = None) -> dict[str, Any] | None:
    """An event's columns from one ``$SYS/broker/log/...`` message, or None if it is not an event."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    text = payload.decode("utf-8", "replace")
    _, _, body = text.partition(": ")
    body = body.strip()
    base = {"node": NODE, "timestamp": now, "metadata": {}}
    if topic.endswith("/subscribe"):
        m = _SUB.match(body)
        if m:
            return {**base, "event_type": "session_subscribed", "clientid": m["cid"], "username": "undefined",
                    "peerhost": "undefined", "topic": m["topic"], "qos": int(m["qos"]) & 3, "sub_props": {}}
        return None
    if topic.endswith("/unsubscribe"):
        m = _UNSUB.match(body)
        if m:
            return {**base, "event_type": "session_unsubscribed", "clientid": m["cid"], "username": "undefined",
                    "peerhost": "undefined", "topic": m["topic"], "unsub_props": {}}
        return None
    m = _CONNECTED.search(body)
    if m:
        name, ver = _PROTO.get(m["p"], ("MQTT", int(m["p"])))
        return {**base, "event_type": "client_connected", "clientid": m["cid"], "username": m["u"] or "undefined",
                "peername": m["peer"], "sockname": "undefined", "proto_name": name, "proto_ver": ver,
                "keepalive": int(m["k"]), "clean_start": m["c"] == "1", "expiry_interval": 0, "is_bridge": False,
                "mountpoint": "undefined", "conn_props": {}, "connected_at": now}
    for pattern, reason in ((_DISCONNECTED, None), (_TIMEOUT, "keepalive_timeout"), (_SOCKET, "sock_closed")):
        m = pattern.match(body)
        if m:
            why = reason or ("normal" if not m.groupdict().get("why") else m["why"].replace(" ", "_"))
            if pattern is _DISCONNECTED and "closed its connection" in body:
                why = "sock_closed"
            return {**base, "event_type": "client_disconnected", "clientid": m["cid"], "username": "undefined",
                    "reason": why, "peername": "undefined", "sockname": "undefined", "disconn_props": {},
                    "disconnected_at": now}
    return None
