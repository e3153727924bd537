"""The compose tier: the same promises as the local tier, against the real stack (EMQX, InfluxDB, services).

Runs only where a Docker engine exists; the plugin skips it elsewhere with its reason. It has not run in
this project's CI, which has no Docker engine (the compose files are validated statically there).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqttlab import Lab, MqttConnectError
from mqttlab.mqtt import connect_and_wait, make_client
from mqttlab.rules import RuleNoMatch
from mqttlab.testing import MessageCollector

pytestmark = pytest.mark.compose
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab.compose(tmp_path_factory.mktemp("compose-lab"), compose_dir=ROOT / "compose") as lab:
        yield lab


def test_status_has_the_local_shape(stack: Lab) -> None:
    doc = stack.status()
    assert doc["backend"] == "compose" and doc["running"]
    assert {"host", "tcp_port", "tls_port", "ws_port", "username", "password", "ca_file"} <= set(doc["mqtt"])
    assert {"url", "key", "secret"} <= set(doc["api"])


def test_anonymous_refused_and_devices_confined(stack: Lab) -> None:
    endpoint = stack.broker_endpoint("tcp")
    with pytest.raises(MqttConnectError):
        connect_and_wait(make_client(endpoint, username=None, password=None), endpoint, timeout=5)
    a, b = stack.devices.add(f"cmp-{uuid.uuid4().hex[:6]}"), stack.devices.add(f"cmp-{uuid.uuid4().hex[:6]}")
    coll = MessageCollector(stack.mqtt_client(device=a))
    assert coll.subscribe(f"devices/{a.id}/#", qos=1).granted
    assert not coll.subscribe(f"devices/{b.id}/#", qos=1).granted


def test_tls_with_the_lab_ca(stack: Lab) -> None:
    assert stack.mqtt_client(transport="tls").is_connected()


def test_twins_round_trip(stack: Lab) -> None:
    thing = f"cmp-twin-{uuid.uuid4().hex[:6]}"
    assert stack.twins.update(thing, desired={"a": 1})["version"] == 1
    assert stack.twins.get(thing)["state"]["delta"] == {"a": 1}


def test_rules_through_emqx_rest_api(stack: Lab) -> None:
    assert stack.rules.test('SELECT payload.x as x FROM "t/#"', topic="t/1", payload={"x": 2}) == {"x": 2}
    with pytest.raises(RuleNoMatch):
        stack.rules.test('SELECT * FROM "t/#"', topic="u/1")
    rid = f"cmp{uuid.uuid4().hex[:6]}"
    stack.rules.create('SELECT payload.v as v FROM "cmp/in"', [
        {"function": "republish", "args": {"topic": "cmp/out", "payload": "${v}"}}], id=rid)
    watcher = MessageCollector(stack.mqtt_client())
    watcher.subscribe("cmp/out", qos=1)
    stack.mqtt_client().publish("cmp/in", json.dumps({"v": 7}), qos=1)
    assert watcher.wait_count(1, timeout=10)[0].payload == b"7"
    assert stack.rules.metrics(rid).set_index("metric")["value"]["matched"] >= 1
    stack.rules.delete(rid)


def test_broker_restart_and_sessions_resume(stack: Lab) -> None:
    cid = f"cmp-persist-{uuid.uuid4().hex[:6]}"
    sub = stack.mqtt_client(client_id=cid, clean_start=False, session_expiry=600)
    MessageCollector(sub).subscribe("cmp/queue", qos=1)
    sub.disconnect()
    stack.restart("emqx")
    stack.mqtt_client().publish("cmp/queue", b"after-restart", qos=1).wait_for_publish(10)
    endpoint = stack.broker_endpoint("tcp")
    client = make_client(endpoint, username=stack.admin[0], password=stack.admin[1], client_id=cid)
    coll = MessageCollector(client)
    present, _ = connect_and_wait(client, endpoint, clean_start=False, session_expiry=600)
    assert present and coll.wait_count(1, timeout=10)[0].payload == b"after-restart"
