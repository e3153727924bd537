"""Rule engine figures (issue 5).

    python bench/bench_rules.py [--seconds 10]

1. evaluation rate of a typical rule (JSON decode + WHERE + 5 selected fields + republish template
   rendering) on one core, no broker;
2. added latency through the live lab at 1,000 msg/s: a subscriber sees the source message and the
   rule's republished output; added = arrival of the output - arrival of the source;
3. the live runtime's sustained rate when flooded (outputs per second).
Targets: >= 20,000 msg/s on one core; added latency p99 < 5 ms at 1,000 msg/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time

from common import pct, report

from mqttlab import Lab
from mqttlab.rules import compile_sql
from mqttlab.rules._events import defaults
from mqttlab.rules._templates import render
from mqttlab.testing import subscribe_and_wait

SQL = ('SELECT payload.temp as temp, payload.hum as hum, payload.site.id as site, topic, payload.seq as seq '
       'FROM "devices/+/telemetry" WHERE payload.temp > 20')
OUT = '{"temp": ${temp}, "hum": ${hum}, "site": "${site}", "seq": ${seq}}'


def evaluation_rate(n: int = 200_000) -> float:
    rule = compile_sql(SQL)
    base = {**defaults("message_publish"), "topic": "devices/d1/telemetry"}
    payloads = [json.dumps({"temp": 21 + i % 10, "hum": 40, "site": {"id": "s1"}, "seq": i}) for i in range(1000)]
    t0 = time.perf_counter()
    for i in range(n):
        out = rule.run({**base, "payload": payloads[i % 1000]})
        render("alerts/${topic}", out)
        render(OUT, out)
    return n / (time.perf_counter() - t0)


def live(lab: Lab, rate: float, seconds: float) -> dict:
    lab.rules.create(SQL, [{"function": "republish", "args": {"topic": "alerts/${topic}", "payload": OUT, "qos": 0}}],
                     id="bench")
    arrivals: dict[tuple[str, int], float] = {}
    added: list[float] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        body = json.loads(msg.payload)
        key = body["seq"]
        with lock:
            if msg.topic.startswith("alerts/"):
                start = arrivals.pop(("src", key), None)
                if start is not None:
                    added.append((now - start) * 1000)
            else:
                arrivals[("src", key)] = now

    sub = lab.mqtt_client()
    sub.on_message = on_message
    subscribe_and_wait(sub, [("devices/+/telemetry", 0), ("alerts/#", 0)])
    pub = lab.mqtt_client()
    total = int(rate * seconds)
    pause = threading.Event()
    t0 = time.perf_counter()
    for i in range(total):
        due = t0 + i / rate
        if due > time.perf_counter():
            pause.wait(due - time.perf_counter())
        pub.publish("devices/d1/telemetry", json.dumps({"temp": 25, "hum": 40, "site": {"id": "s1"}, "seq": i}))
    deadline = time.perf_counter() + 10
    while len(added) < total * 0.999 and time.perf_counter() < deadline:
        pause.wait(0.05)
    lab.rules.delete("bench")
    return {"sent": total, "outputs": len(added), "added_ms": {"p50": pct(added, 50), "p90": pct(added, 90),
                                                               "p99": pct(added, 99), "max": max(added)}}


def flood(lab: Lab, messages: int) -> dict:
    lab.rules.create(SQL, [{"function": "republish", "args": {"topic": "alerts/${topic}", "payload": OUT, "qos": 0}}],
                     id="flood")
    got = threading.Event()
    count = [0]

    def on_message(client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        count[0] += 1
        if count[0] >= messages:
            got.set()

    sub = lab.mqtt_client()
    sub.on_message = on_message
    subscribe_and_wait(sub, "alerts/#", 0)
    pub = lab.fleet.bench  # the fast publisher is not needed: paho at QoS 1 keeps the broker's queue bounded
    del pub
    client = lab.mqtt_client()
    body = [json.dumps({"temp": 25, "hum": 40, "site": {"id": "s1"}, "seq": i}).encode() for i in range(messages)]
    t0 = time.perf_counter()
    for b in body:
        client.publish("devices/d1/telemetry", b, qos=0)
    got.wait(60)
    elapsed = time.perf_counter() - t0
    lab.rules.delete("flood")
    return {"messages": messages, "outputs": count[0], "rate_msg_s": round(count[0] / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    eval_rate = evaluation_rate()
    with tempfile.TemporaryDirectory() as tmp, Lab.local(tmp) as lab:
        lat = live(lab, 1000.0, args.seconds)
        fl = flood(lab, 50_000)
    report("rules", {"evaluation_rate": eval_rate, "live_1000": lat, "flood": fl}, [
        ("evaluation rate, one core (msg/s)", f"{eval_rate:,.0f}", ">= 20,000"),
        ("live outputs at 1,000 msg/s", f"{lat['outputs']}/{lat['sent']}", "all"),
        ("added latency p50 (ms)", f"{lat['added_ms']['p50']:.2f}", ""),
        ("added latency p99 (ms)", f"{lat['added_ms']['p99']:.2f}", "< 5"),
        ("live runtime when flooded (outputs/s)", f"{fl['rate_msg_s']:,}", ""),
    ])


if __name__ == "__main__":
    main()
