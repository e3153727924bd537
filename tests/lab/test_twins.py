"""The twin service over the real broker: AWS shadow topics, rejections, durability, HTTP API, lab.twins."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mqttlab import Device, Lab
from mqttlab.testing import MessageCollector
from mqttlab.twins import ShadowDevice, TwinError

pytestmark = pytest.mark.lab


class ShadowClient:
    """What device firmware does: subscribe to the response topics, publish requests, read answers."""

    def __init__(self, lab: Lab, device: Device, name: str | None = None) -> None:
        self.prefix = f"$aws/things/{device.id}/shadow" + (f"/name/{name}" if name else "")
        self.client = lab.mqtt_client(device=device)
        self.inbox = MessageCollector(self.client)
        assert self.inbox.subscribe(f"$aws/things/{device.id}/shadow/#", qos=1).granted

    def request(self, op: str, body: Any = b"") -> tuple[str, dict[str, Any]]:
        """Publish ``op`` and return (accepted|rejected, document) of its answer (matched by clientToken)."""
        token = uuid.uuid4().hex
        if isinstance(body, dict):
            body = json.dumps({**body, "clientToken": body.get("clientToken", token)}).encode()
            token = json.loads(body)["clientToken"]
            if not isinstance(token, str) or len(token.encode()) > 64:
                token = None  # an invalid token is not echoed: take the next answer
        elif op != "update" and not body:
            body = json.dumps({"clientToken": token}).encode()
        else:
            token = None
        start = len(self.inbox.messages)
        self.client.publish(f"{self.prefix}/{op}", body, qos=1)
        answers = (f"{self.prefix}/{op}/accepted", f"{self.prefix}/{op}/rejected")

        def answered(msgs: list) -> bool:
            return any(m.topic in answers and (token is None or json.loads(m.payload).get("clientToken") == token)
                       for m in msgs[start:])

        msgs = self.inbox.wait_for(answered, what=f"an answer to {op}")
        msg = next(m for m in msgs[start:] if m.topic in answers and
                   (token is None or json.loads(m.payload).get("clientToken") == token))
        return msg.topic.rsplit("/", 1)[1], json.loads(msg.payload)

    def last(self, suffix: str) -> dict[str, Any]:
        msg = self.inbox.wait_topic(f"{self.prefix}/{suffix}")
        return json.loads([m for m in self.inbox.messages if m.topic == msg.topic][-1].payload)


@pytest.fixture
def shadow(lab: Lab, make_device: Callable[..., Device]) -> ShadowClient:
    return ShadowClient(lab, make_device("thing"))


def test_update_get_delta_documents(shadow: ShadowClient) -> None:
    outcome, acc = shadow.request("update", {"state": {"desired": {"temp": 21, "mode": {"fan": "auto"}}},
                                             "clientToken": "t-1"})
    assert outcome == "accepted" and acc["version"] == 1 and acc["clientToken"] == "t-1"
    assert acc["state"] == {"desired": {"temp": 21, "mode": {"fan": "auto"}}}
    assert acc["metadata"]["desired"]["mode"]["fan"]["timestamp"] == acc["timestamp"]
    delta = shadow.last("update/delta")
    assert delta["state"] == {"temp": 21, "mode": {"fan": "auto"}} and delta["clientToken"] == "t-1"
    docs = shadow.last("update/documents")
    assert docs["previous"] is None and docs["current"]["version"] == 1

    outcome, acc = shadow.request("update", {"state": {"reported": {"temp": 21, "mode": {"fan": "on"}, "rssi": -60}}})
    assert outcome == "accepted" and acc["version"] == 2
    outcome, doc = shadow.request("get")
    assert outcome == "accepted"
    assert doc["state"]["delta"] == {"mode": {"fan": "auto"}}  # reported-only rssi excluded, nested path kept
    assert doc["version"] == 2 and set(doc["metadata"]) == {"desired", "reported"}
    docs = shadow.last("update/documents")
    assert docs["previous"]["version"] == 1 and docs["current"]["state"]["reported"]["rssi"] == -60


def test_rejections_over_mqtt(shadow: ShadowClient) -> None:
    outcome, err = shadow.request("get")
    assert outcome == "rejected" and err["code"] == 404 and err["message"].startswith("No shadow exists with name")
    cases: list[tuple[Any, int, str]] = [
        (b"{not json", 400, "Invalid JSON"),
        (b"\xc3\x28", 415, "Unsupported documented encoding; supported encoding is UTF-8"),
        ({"nostate": 1}, 400, "Missing required node: state"),
        ({"state": {"desired": 1}}, 400, "Desired node must be an object"),
        ({"state": {"delta": {}}}, 400, "State contains an invalid node"),
        ({"state": {"desired": {"a": 1}}, "clientToken": "x" * 65}, 400, "Invalid clientToken"),
        ({"state": {"desired": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}}, 400,
         "JSON contains too many levels of nesting; maximum is 6"),
        ({"state": {"desired": {"blob": "x" * 9000}}}, 413, "The payload exceeds the maximum size allowed"),
    ]
    for body, code, message in cases:
        outcome, err = shadow.request("update", body)
        assert outcome == "rejected" and (err["code"], err["message"]) == (code, message), body
    shadow.request("update", {"state": {"reported": {"a": 1}}})
    outcome, err = shadow.request("update", {"state": {"reported": {"a": 2}}, "version": 5, "clientToken": "lock"})
    assert (outcome, err["code"], err["message"], err["clientToken"]) == ("rejected", 409, "Version conflict", "lock")
    outcome, acc = shadow.request("update", {"state": {"reported": {"a": 2}}, "version": 1})
    assert outcome == "accepted" and acc["version"] == 2


def test_delete_then_get_then_recreate(shadow: ShadowClient) -> None:
    shadow.request("update", {"state": {"desired": {"x": 1}}})
    shadow.request("update", {"state": {"desired": {"x": 2}}})
    outcome, body = shadow.request("delete")
    assert outcome == "accepted" and body["version"] == 2
    assert shadow.request("get")[1]["code"] == 404
    assert shadow.request("delete")[1]["code"] == 404
    outcome, acc = shadow.request("update", {"state": {"desired": {"x": 3}}})
    assert outcome == "accepted" and acc["version"] == 3  # the count continues within 48 h


def test_named_shadows_are_separate(lab: Lab, make_device: Callable[..., Device]) -> None:
    dev = make_device("named")
    classic, named = ShadowClient(lab, dev), ShadowClient(lab, dev, name="firmware")
    named.request("update", {"state": {"desired": {"version": "1.2.0"}}})
    assert classic.request("get")[1]["code"] == 404
    assert named.request("get")[1]["state"]["desired"] == {"version": "1.2.0"}
    assert lab.twins.list(dev.id) == [{"thing": dev.id, "shadow": "firmware", "version": 1,
                                       "timestamp": lab.twins.list(dev.id)[0]["timestamp"]}]


def test_device_cannot_touch_another_devices_shadow(lab: Lab, make_device: Callable[..., Device]) -> None:
    a, b = make_device(), make_device()
    lab.twins.update(b.id, desired={"secret": 1})
    client = MessageCollector(lab.mqtt_client(device=a))
    assert client.subscribe(f"$aws/things/{b.id}/shadow/#", qos=1).values == [0x87]
    client.client.publish(f"$aws/things/{b.id}/shadow/update", json.dumps({"state": {"desired": {"secret": 2}}}),
                          qos=1).wait_for_publish(5)
    assert lab.twins.get(b.id)["state"]["desired"] == {"secret": 1} and lab.twins.get(b.id)["version"] == 1


def test_desired_change_reaches_reactive_device_and_delta_clears(lab: Lab, make_device: Callable[..., Device]) -> None:
    dev = make_device("thermostat")
    device = ShadowDevice(lab.mqtt_client(device=dev), dev.id, initial={"setpoint": 18, "mode": "eco"},
                          apply=lambda state, delta: {**delta, "setpoint": min(delta.get("setpoint", 0), 25)}
                          if "setpoint" in delta else delta)
    device.report()
    lab.twins.update(dev.id, desired={"setpoint": 22, "mode": "comfort"})
    doc = lab.twins.wait_in_sync(dev.id, timeout=10)
    assert doc["state"]["reported"] == {"setpoint": 22, "mode": "comfort"} and device.state["setpoint"] == 22
    # a device that clamps: desired 30 is reported as 25, so the delta stays
    lab.twins.update(dev.id, desired={"setpoint": 30})
    with pytest.raises(TimeoutError) as err:
        lab.twins.wait_in_sync(dev.id, timeout=1.0)
    assert "setpoint" in str(err.value)
    assert lab.twins.delta(dev.id) == {"setpoint": 30} and lab.twins.get(dev.id)["state"]["reported"]["setpoint"] == 25


def test_http_api_and_client(lab: Lab) -> None:
    thing = f"http-{uuid.uuid4().hex[:6]}"
    acc = lab.twins.update(thing, desired={"a": 1, "b": {"c": 2}}, client_token="h1")
    assert acc["version"] == 1 and acc["clientToken"] == "h1"
    lab.twins.update(thing, reported={"a": 1})
    lab.twins.update(thing, desired={"b": {"c": None}, "d": [1, 2]})
    assert lab.twins.get(thing)["state"]["desired"] == {"a": 1, "d": [1, 2]}
    hist = lab.twins.history(thing)
    assert hist["version"].tolist() == [1, 2, 3] and hist["op"].tolist() == ["update"] * 3
    assert lab.twins.diff(thing, 1, 3) == [{"path": "desired.b.c", "old": 2, "new": None},
                                           {"path": "desired.d", "old": None, "new": [1, 2]},
                                           {"path": "reported.a", "old": None, "new": 1}]
    with pytest.raises(TwinError) as err:
        lab.twins.update(thing, desired={"a": 2}, version=1)
    assert err.value.status == 409 and "retry" in (err.value.hint or "")
    lab.twins.delete(thing)
    with pytest.raises(TwinError) as err:
        lab.twins.get(thing)
    assert err.value.status == 404
    raw = httpx.post(f"{lab.endpoints.api}/things/{thing}/shadow", auth=lab.api_auth, content=b"{bad")
    assert raw.status_code == 400 and raw.json()["message"] == "Invalid JSON"
    assert httpx.get(f"{lab.endpoints.api}/things/{thing}/shadow").status_code == 401
    spec = httpx.get(f"{lab.endpoints.api}/openapi.json").json()
    assert {"/things/{thing}/shadow", "/api/twins", "/api/twins/{thing}/history"} <= set(spec["paths"])


def test_editor_widget_applies_desired(lab: Lab) -> None:
    pytest.importorskip("ipywidgets")
    thing = f"ui-{uuid.uuid4().hex[:6]}"
    lab.twins.update(thing, desired={"a": 1}, reported={"a": 0})
    box = lab.twins.editor(thing)
    header, _labels, areas, buttons, status = box.children
    desired, reported, delta = areas.children
    assert json.loads(delta.value) == {"a": 1} and "version <b>1</b>" in header.value
    desired.value = json.dumps({"a": 5})
    buttons.children[0].click()
    assert "applied as version 2" in status.value
    assert lab.twins.get(thing)["state"]["desired"] == {"a": 5} and json.loads(reported.value) == {"a": 0}
    desired.value = "{oops"
    buttons.children[0].click()
    assert "not valid JSON" in status.value and lab.twins.get(thing)["version"] == 2


def test_accepted_updates_survive_kill_and_restart(tmp_path: Path) -> None:
    sd = tmp_path / "lab"
    with Lab.local(sd) as lab:
        dev = lab.devices.add("durable-1")
        client = ShadowClient(lab, dev)
        accepted = [client.request("update", {"state": {"reported": {"n": i}}})[1]["version"] for i in range(30)]
        assert accepted == list(range(1, 31))
        os.kill(lab.status()["components"]["services"]["pid"], signal.SIGKILL)  # no chance to flush anything
        lab.restart("services")
        doc = lab.twins.get("durable-1")
        assert doc["version"] == 30 and doc["state"]["reported"] == {"n": 29}
        assert len(lab.twins.history("durable-1")) == 30
        lab.stop()
        lab = Lab.local(sd)  # a clean down/up keeps them too
        assert lab.twins.get("durable-1")["version"] == 30
        assert client.client  # the old client object is closed with the old lab
