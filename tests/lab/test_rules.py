"""Rules against the real lab: EMQX-shaped REST statuses, live actions through the broker, events, persistence."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mqttlab import Lab
from mqttlab._wait import wait_until
from mqttlab.rules import RuleApiError, RuleNoMatch, RuleTestError
from mqttlab.testing import MessageCollector

pytestmark = pytest.mark.lab
GOLDEN = Path(__file__).resolve().parents[2] / "notebooks" / "data" / "rules-golden.yaml"


def _id() -> str:
    return f"r{uuid.uuid4().hex[:6]}"


def test_rule_test_statuses(lab: Lab) -> None:
    url, auth = lab.endpoints.api + "/api/v5/rule_test", lab.api_auth
    ok = httpx.post(url, auth=auth, json={"sql": 'SELECT payload.a as a FROM "t/#"',
                                          "context": {"event_type": "message_publish", "topic": "t/1",
                                                      "payload": '{"a": 1}'}})
    assert ok.status_code == 200 and ok.json() == {"a": 1}
    nomatch = httpx.post(url, auth=auth, json={"sql": 'SELECT * FROM "x/#"', "context": {"event_type": "message_publish",
                                                                                          "topic": "t/1"}})
    assert nomatch.status_code == 412 and nomatch.json() == {"code": "NOT_MATCH", "message": "SQL Not Match"}
    bad = httpx.post(url, auth=auth, json={"sql": "SELECT FROM", "context": {"event_type": "message_publish"}})
    assert bad.status_code == 400 and bad.json()["code"] == "BAD_REQUEST" and "line 1" in bad.json()["message"]
    runtime = httpx.post(url, auth=auth, json={"sql": 'SELECT payload.a as a FROM "t/#"', "context": {
        "event_type": "message_publish", "topic": "t", "payload": "nope"}})
    assert runtime.status_code == 400 and "decode_json_failed" in runtime.json()["message"]
    unknown = httpx.post(url, auth=auth, json={"sql": 'SELECT * FROM "t"', "context": {"event_type": "bogus"}})
    assert unknown.status_code == 400 and "unknown event type" in unknown.json()["message"]
    media = httpx.post(url, auth=auth, content=b"{}", headers={"content-type": "text/plain"})
    assert media.status_code == 415 and media.json() == {"code": "UNSUPPORTED_MEDIA_TYPE",
                                                         "message": "content-type:application/json Required"}
    assert httpx.post(url, json={}).status_code == 401


def test_crud_metrics_and_404(lab: Lab) -> None:
    api, auth = lab.endpoints.api + "/api/v5", lab.api_auth
    created = httpx.post(f"{api}/rules", auth=auth, json={"sql": 'SELECT * FROM "crud/#"', "actions": []})
    assert created.status_code == 201
    rule = created.json()
    assert len(rule["id"]) == 8 and rule["from"] == ["crud/#"] and rule["enable"] is True
    assert httpx.post(f"{api}/rules", auth=auth, json={"id": rule["id"], "sql": 'SELECT * FROM "x"'}).json()[
        "message"] == "rule id already exists"
    assert httpx.post(f"{api}/rules", auth=auth, json={"id": "", "sql": 'SELECT * FROM "x"'}).json()[
        "message"] == "empty rule id is not allowed"
    assert httpx.post(f"{api}/rules", auth=auth, json={"sql": 'SELECT * FROM "x"', "actions": [{"function": "rm"}]}
                      ).status_code == 400
    put = httpx.put(f"{api}/rules/{rule['id']}", auth=auth, json={"sql": 'SELECT * FROM "crud/+"', "enable": False})
    assert put.status_code == 200 and put.json()["enable"] is False and put.json()["created_at"] == rule["created_at"]
    listed = httpx.get(f"{api}/rules", auth=auth, params={"like_id": rule["id"]}).json()
    assert [r["id"] for r in listed["data"]] == [rule["id"]] and listed["meta"]["count"] == 1
    metrics = httpx.get(f"{api}/rules/{rule['id']}/metrics", auth=auth).json()
    assert metrics["id"] == rule["id"] and metrics["metrics"]["matched"] == 0 and metrics["node_metrics"]
    assert httpx.put(f"{api}/rules/{rule['id']}/metrics/reset", auth=auth).status_code == 204
    assert httpx.delete(f"{api}/rules/{rule['id']}", auth=auth).status_code == 204
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/metrics")):
        missing = httpx.request(method, f"{api}/rules/{rule['id']}{path}", auth=auth)
        assert missing.status_code == 404 and missing.json() == {"code": "NOT_FOUND", "message": "Rule Id Not Found"}


def test_live_republish_with_templates_and_metrics(lab: Lab) -> None:
    rid, dev = _id(), lab.devices.add(f"rule-dev-{uuid.uuid4().hex[:5]}")
    lab.rules.create('SELECT payload.temp as temp, topic, payload.unit as unit FROM "devices/+/telemetry" '
                     'WHERE payload.temp > 30',
                     [{"function": "republish", "args": {"topic": "alerts/${topic}", "qos": 1,
                                                        "payload": '{"temp": ${temp}, "unit": "${unit}", "x": "${nope}"}',
                                                        "user_properties": {"source": "rule"}}}], id=rid)
    watcher = MessageCollector(lab.mqtt_client())
    watcher.subscribe(f"alerts/devices/{dev.id}/#", qos=1)
    client = lab.mqtt_client(device=dev)
    for temp in (25, 35, 40):
        client.publish(dev.telemetry_topic, json.dumps({"temp": temp}), qos=1).wait_for_publish(5)
    alerts = watcher.wait_count(2)
    assert [json.loads(m.payload) for m in alerts] == [{"temp": 35, "unit": "undefined", "x": "undefined"},
                                                       {"temp": 40, "unit": "undefined", "x": "undefined"}]
    assert ("source", "rule") in alerts[0].properties.UserProperty
    wait_until(lambda: lab.rules.metrics(rid).set_index("metric")["value"]["matched"] == 3, timeout=5, what="metrics")
    m = lab.rules.metrics(rid).set_index("metric")["value"]
    assert (m["matched"], m["passed"], m["failed.no_result"], m["actions.success"]) == (3, 2, 1, 2)
    prom = httpx.get(lab.endpoints.metrics).text
    assert f'emqx_rule_matched_total{{id="{rid}"}} 3.0' in prom
    lab.rules.delete(rid)


def test_a_rule_cannot_feed_itself(lab: Lab) -> None:
    rid = _id()
    lab.rules.create(f'SELECT * FROM "loop-{rid}/#"', [{"function": "republish", "args": {"topic": f"loop-{rid}/again"}}],
                     id=rid)
    watcher = MessageCollector(lab.mqtt_client())
    watcher.subscribe(f"loop-{rid}/#", qos=1)
    lab.mqtt_client().publish(f"loop-{rid}/start", b"x", qos=1)
    watcher.wait_count(2)
    wait_until(lambda: lab.rules.metrics(rid).set_index("metric")["value"]["actions.discarded"] == 1, timeout=5,
               what="the loop to be cut")
    m = lab.rules.metrics(rid).set_index("metric")["value"]
    assert m["matched"] == 1 and m["actions.success"] == 1 and len(watcher.messages) == 2


def test_events_from_the_broker(lab: Lab) -> None:
    rid = _id()
    lab.rules.create('SELECT clientid, username, proto_ver, clean_start FROM "$events/client_connected"',
                     [{"function": "republish", "args": {"topic": f"ev/{rid}/${{clientid}}", "payload": "${username}"}}],
                     id=rid)
    sub_rid = _id()
    lab.rules.create('SELECT clientid, topic, qos FROM "$events/session_subscribed"',
                     [{"function": "republish", "args": {"topic": f"ev/{sub_rid}", "payload": "${topic}|${qos}"}}],
                     id=sub_rid)
    watcher = MessageCollector(lab.mqtt_client())
    watcher.subscribe("ev/#", qos=1)
    cid = f"evt-{uuid.uuid4().hex[:6]}"
    probe = lab.mqtt_client(client_id=cid, protocol="3.1.1")
    MessageCollector(probe).subscribe("some/filter/+", qos=1)
    connected = watcher.wait_topic(f"ev/{rid}/{cid}")
    assert connected.payload == lab.admin[0].encode()
    subscribed = watcher.wait_for(lambda ms: any(m.payload == b"some/filter/+|1" for m in ms), what="subscribed event")
    assert subscribed
    assert lab.rules.test('SELECT proto_ver FROM "$events/client_connected"', "client_connected") == {"proto_ver": 5}


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_http_action_and_console(lab: Lab, webhook: str) -> None:
    rid = _id()
    lab.rules.create(f'SELECT payload.v as v FROM "hook/{rid}"',
                     [{"function": "http", "args": {"url": webhook, "body": '{"value": ${v}}'}}, {"function": "console"}],
                     id=rid)
    lab.mqtt_client().publish(f"hook/{rid}", json.dumps({"v": 7}), qos=1)
    wait_until(lambda: _Hook.received, timeout=5, what="the webhook call")
    assert json.loads(_Hook.received[0]) == {"value": 7}
    wait_until(lambda: lab.rules.metrics(rid).set_index("metric")["value"]["actions.success"] == 2, timeout=5,
               what="both actions counted")
    assert "rule " + rid + " output" in lab.logs("services", 500)


def test_client_test_tail_and_golden_cases(lab: Lab) -> None:
    assert lab.rules.test('SELECT payload.x + 1 as y FROM "t/#"', topic="t/a", payload={"x": 1}) == {"y": 2}
    with pytest.raises(RuleNoMatch) as no:
        lab.rules.test('SELECT * FROM "t/#"', topic="u")
    assert no.value.status == 412 and no.value.code == "NOT_MATCH"
    with pytest.raises(RuleTestError) as bad:
        lab.rules.test("SELECT x FROM")
    assert bad.value.status == 400 and "line 1" in bad.value.message
    with pytest.raises(RuleApiError) as missing:
        lab.rules.get("no-such-rule")
    assert missing.value.status == 404
    rid = _id()
    lab.rules.create(f'SELECT payload.n as n FROM "tail/{rid}"', id=rid)
    client = lab.mqtt_client()
    for n in range(3):
        client.publish(f"tail/{rid}", json.dumps({"n": n}), qos=1).wait_for_publish(5)
    assert [o["n"] for o in lab.rules.tail(rid, count=3, from_start=True, timeout=5)] == [0, 1, 2]
    assert list(lab.rules.tail(rid, timeout=0.2)) == []  # nothing new since
    results = lab.rules.golden(GOLDEN)
    assert results["ok"].all(), results[~results["ok"]].to_dict("records")
    assert len(results) == 9


def test_rules_persist_across_restart(tmp_path: Path) -> None:
    sd = tmp_path / "lab"
    with Lab.local(sd) as own:
        own.rules.create('SELECT * FROM "keep/#"', [{"function": "console"}], id="kept", description="stays")
    with Lab.local(sd) as own:
        assert own.rules.get("kept")["description"] == "stays"
        own.mqtt_client().publish("keep/1", b"{}", qos=1).wait_for_publish(5)
        wait_until(lambda: own.rules.metrics("kept").set_index("metric")["value"]["matched"] == 1, timeout=5,
                   what="the restored rule to run")


def test_rule_editor_widget(lab: Lab) -> None:
    pytest.importorskip("ipywidgets")
    box = lab.rules.editor('SELECT payload.temp as temp FROM "devices/+/telemetry" WHERE payload.temp > 30')
    sql_box, ctx_box, controls, result = box.children
    id_box, test_btn, deploy_btn = controls.children
    test_btn.click()
    assert '"temp": 31' in result.value
    ctx_box.value = json.dumps({"topic": "devices/d1/telemetry", "payload": '{"temp": 20}'})
    test_btn.click()
    assert "412" in result.value
    sql_box.value = "SELECT broken FROM"
    test_btn.click()
    assert "syntax error" in result.value
    sql_box.value = 'SELECT * FROM "editor/#"'
    id_box.value = f"ed{uuid.uuid4().hex[:5]}"
    deploy_btn.click()
    assert "deployed as" in result.value and lab.rules.get(id_box.value)["from"] == ["editor/#"]
