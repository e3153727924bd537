"""Fleet and load figures (issue 3), side by side with MQTT.js as the peer.

    python bench/bench_fleet.py [--quick]

Measures on the local lab: publish throughput QoS 0 / QoS 1 (one process, 64-byte payloads),
end-to-end latency at 2,000 and 10,000 msg/s QoS 1, 10,000 idle connections held by one process
(connect rate, client memory per connection), TLS connect time, subscribe throughput with loss
checks; and MQTT.js's publish throughput against the same broker in the same run (needs node;
`npm install` in bench/peer is done on first use).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import report

from mqttlab import Lab
from mqttlab.fleet._target import lab_target

PEER = Path(__file__).parent / "peer"


def mqttjs(lab: Lab, qos: int, messages: int, clients: int) -> dict | None:
    node = shutil.which("node")
    if node is None:
        return None
    if not (PEER / "node_modules" / "mqtt").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=PEER, check=True)
    t = lab_target(lab)
    out = subprocess.run([node, str(PEER / "mqttjs_pub.js"), f"mqtt://{t.host}:{t.port}", t.username or "",
                          t.password or "", str(qos), str(messages), str(clients)],
                         capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, Lab.local(tmp) as lab:
        b = lab.fleet.bench
        for qos in (0, 1):
            n = int((600_000 if qos == 0 else 300_000) * scale)
            ours = b("pub", qos=qos, messages=n, clients=4)
            peer = mqttjs(lab, qos, n, 4)
            results[f"pub_qos{qos}"] = {"mqttlab": ours.metrics, "mqttjs": peer}
        for rate in (2000, 10000):
            results[f"latency_{rate}"] = b("latency", rate=rate, duration=10 * scale if scale < 1 else 10).to_json()
        conns = int(10_000 * scale)
        results["conn_tcp"] = b("conn", count=conns, rate=6000, in_flight=90, hold=2.0).to_json()
        results["conn_tls"] = b("conn", transport="tls", count=int(1000 * max(scale, 0.3)), rate=500, in_flight=16).to_json()
        results["sub_qos0"] = b("sub", qos=0, messages=int(200_000 * scale)).to_json()

    def ratio(key: str) -> str:
        peer = results[key]["mqttjs"]
        return f"{results[key]['mqttlab']['rate_msg_s'] / peer['rate_msg_s']:.2f}x" if peer else "n/a"

    def peer_rate(key: str) -> str:
        peer = results[key]["mqttjs"]
        return f"{peer['rate_msg_s']:,}" if peer else "no node"

    lat2, lat10 = results["latency_2000"]["latency"], results["latency_10000"]["latency"]
    ct, cl = results["conn_tcp"], results["conn_tls"]
    sub = results["sub_qos0"]["metrics"]
    report("fleet", {"results": results}, [
        ("pub QoS 0 msg/s (mqttlab)", f"{results['pub_qos0']['mqttlab']['rate_msg_s']:,}", ">= 150,000"),
        ("pub QoS 0 msg/s (MQTT.js)", peer_rate("pub_qos0"), f"ratio {ratio('pub_qos0')}"),
        ("pub QoS 1 acked msg/s (mqttlab)", f"{results['pub_qos1']['mqttlab']['rate_msg_s']:,}", ">= 70,000"),
        ("pub QoS 1 acked msg/s (MQTT.js)", peer_rate("pub_qos1"), f"ratio {ratio('pub_qos1')}"),
        ("latency p99 @2k msg/s QoS 1 (ms)", f"{lat2['p99_ms']:.3f}", "< 1"),
        ("latency p99 @10k msg/s QoS 1 (ms)", f"{lat10['p99_ms']:.3f}", "< 5"),
        ("connections held", f"{ct['metrics']['alive_after_hold']:,}", ">= 10,000"),
        ("connect rate /s", f"{ct['metrics']['connect_rate_per_s']:,}", ">= 3,000"),
        ("client KiB per connection", f"{ct['metrics']['client_kib_per_connection']:.2f}", "< 10"),
        ("TLS connect p99 (ms)", f"{cl['latency']['p99_ms']:.2f}", "< 5"),
        ("sub QoS 0 received/s, lost", f"{sub['receive_rate_msg_s']:,}, {sub['lost']}", "keeps up, lost 0"),
    ])


if __name__ == "__main__":
    main()
