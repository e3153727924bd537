"""Shadow update round trip over MQTT: publish `update`, wait for `update/accepted`.

    python bench/bench_twins.py [--things 1000] [--rate 2000] [--seconds 10]

Open loop: updates are sent on a fixed schedule (round-robin over the things) whatever the answers
do, so a slow service shows as latency, not as a lower offered rate. Target (issue 4): >= 2,000
updates/s sustained with p99 < 20 ms on this machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time

from common import pct, report

from mqttlab import Lab
from mqttlab.testing import subscribe_and_wait


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--things", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    rejected = 0
    lock = threading.Lock()
    done = threading.Event()
    total = int(args.rate * args.seconds)

    def on_message(client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        nonlocal rejected
        now = time.perf_counter()
        token = json.loads(msg.payload).get("clientToken")
        with lock:
            t0 = sent.pop(token, None)
            if t0 is not None:
                latencies.append(now - t0)
                if msg.topic.endswith("rejected"):
                    rejected += 1
            if len(latencies) >= total:
                done.set()

    with tempfile.TemporaryDirectory() as tmp, Lab.local(tmp) as lab:
        clients = []
        for _ in range(args.clients):
            c = lab.mqtt_client()
            c.on_message = on_message
            subscribe_and_wait(c, [("$aws/things/+/shadow/update/accepted", 1), ("$aws/things/+/shadow/update/rejected", 1)])
            clients.append(c)
        things = [f"bench-{i:05d}" for i in range(args.things)]
        interval = 1.0 / args.rate
        pause = threading.Event()
        start = time.perf_counter()
        for i in range(total):
            target = start + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                pause.wait(delay)
            token = f"b{i}"
            thing = things[i % len(things)]
            body = json.dumps({"state": {"reported": {"seq": i, "temp": 20 + i % 7}, "desired": {"temp": 21}},
                               "clientToken": token})
            with lock:
                sent[token] = time.perf_counter()
            clients[i % len(clients)].publish(f"$aws/things/{thing}/shadow/update", body, qos=1)
        send_s = time.perf_counter() - start
        finished = done.wait(30)
        elapsed = time.perf_counter() - start
        status = lab.status()
        rss = status["components"]["services"]["rss_bytes"] / 2**20
    ms = sorted(x * 1000 for x in latencies)
    answered = len(ms)
    summary = {"things": args.things, "offered_rate": args.rate, "sent": total, "answered": answered,
               "rejected": rejected, "all_answered": finished, "send_seconds": send_s,
               "achieved_rate": answered / elapsed if elapsed else 0,
               "latency_ms": {"p50": pct(ms, 50), "p90": pct(ms, 90), "p99": pct(ms, 99), "max": ms[-1]},
               "services_rss_mib": rss}
    report("twins", summary, [
        ("updates offered / answered", f"{total} / {answered}", "all answered"),
        ("sustained updates/s", f"{summary['achieved_rate']:.0f}", f"target >= 2000 (offered {args.rate:.0f})"),
        ("round trip p50 (ms)", f"{pct(ms, 50):.2f}", ""),
        ("round trip p99 (ms)", f"{pct(ms, 99):.2f}", "target < 20"),
        ("round trip max (ms)", f"{ms[-1]:.2f}", ""),
    ])


if __name__ == "__main__":
    main()
