"""History figures (issue 6): recorder throughput with zero loss, query times over 1M rows, replay timing.

    python bench/bench_history.py [--rate 50000] [--seconds 10] [--rows 1000000]

1. a publisher offers --rate msg/s (QoS 1, JSON payloads with per-publisher seq) for --seconds; the
   recorder must store every one (checked by count and by the stamped sequence numbers);
2. 1M messages (100 devices) are imported, then `series` (10 s buckets over the whole set) and one
   device's last 1,000 `messages` are timed through lab.history (HTTP + Parquet + pandas included);
3. a 2,000-message incident is replayed at 1x (timing error percentiles) and at "max" (rate).
Targets: >= 50,000 msg/s recorded with zero loss; series < 100 ms; last 1,000 < 20 ms; replay 1x
timing error p99 < 2 ms; replay max >= 50,000 msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import report

from mqttlab import Lab
from mqttlab.aio import _wire as w
from mqttlab.aio._conn import ConnectOptions, MqttConnection
from mqttlab.aio._loop import LoopThread
from mqttlab.history._schema import MESSAGES


async def offer(opts: list[ConnectOptions], rate: float, seconds: float) -> int:
    """Publish JSON telemetry from several connections at a fixed total rate (open loop); returns the count."""
    conns = [await MqttConnection(o).connect() for o in opts]
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    per = total // len(conns)

    async def one(i: int, conn: MqttConnection) -> None:
        first, topic = w.publish_prefix(f"devices/rec-{i}/telemetry", 1)
        start = loop.time()
        r = rate / len(conns)
        for seq in range(per):
            due = start + seq / r
            if seq % 200 == 0:
                conn.flush()
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if conn.window_full:
                conn.flush()
                await conn.wait_window()
            conn.send_publish(first, topic, b'{"seq":%d,"temp":%d.5}' % (seq, seq % 30), batch=True)
        conn.flush()
        await conn.drain_acks(60)

    await asyncio.gather(*(one(i, c) for i, c in enumerate(conns)))
    for c in conns:
        await c.disconnect()
    return per * len(conns)


def recorder_throughput(lab: Lab, rate: float, seconds: float) -> dict:
    endpoint = lab.broker_endpoint("tcp")
    user, password = lab.admin
    opts = [ConnectOptions(endpoint.host, endpoint.port, f"rec-bench-{i}", user, password) for i in range(4)]
    before = lab.history.stats()["recorder"]["written"]
    loop = LoopThread("rec-bench")
    t0 = time.perf_counter()
    sent = loop.run(offer(opts, rate, seconds))
    offered_s = time.perf_counter() - t0
    loop.stop()
    deadline = time.time() + 120
    stats = lab.history.stats()
    while stats["recorder"]["written"] - before < sent and time.time() < deadline:
        time.sleep(0.1)
        stats = lab.history.stats()
    recorded_s = time.perf_counter() - t0
    stored = lab.history.table(topic="devices/+/telemetry").num_rows
    return {"offered": sent, "offered_rate": round(sent / offered_s), "recorded": stats["recorder"]["written"] - before,
            "stored": stored, "record_rate": round(sent / recorded_s), "drain_s": round(recorded_s - offered_s, 3),
            "stamped_missing": stats["recorder"]["stamped"]["missing"], "write_errors": stats["recorder"]["write_errors"]}


def query_times(lab: Lab, rows: int, tmp: Path) -> dict:
    rng = np.random.default_rng(1)
    devices = np.arange(rows) % 100
    ts = 1_790_000_000_000_000_000 + np.arange(rows, dtype=np.int64) * 1_000_000
    payloads = [b'{"temp":%.2f,"seq":%d}' % (v, i) for i, v in enumerate(rng.normal(21, 2, rows))]
    table = pa.table({"seq": pa.array(np.arange(1, rows + 1), pa.int64()), "ts": pa.array(ts, pa.int64()),
                      "topic": [f"devices/q{d:03d}/telemetry" for d in devices], "device": [f"q{d:03d}" for d in devices],
                      "payload": payloads, "qos": pa.array(np.ones(rows, dtype=np.uint8)), "retain": [False] * rows,
                      "props": pa.array([None] * rows, pa.string()), "client_id": pa.array([None] * rows, pa.string())},
                     schema=MESSAGES)
    path = tmp / "million.parquet"
    pq.write_table(table, path)
    t0 = time.perf_counter()
    imported = lab.history.import_file(path)
    import_s = time.perf_counter() - t0
    series_ms, last_ms = [], []
    for _ in range(5):
        t = time.perf_counter()
        df = lab.history.series("temp", topic="devices/+/telemetry", every="10s")
        series_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        recent = lab.history.messages(device="q042", last=1000)
        last_ms.append((time.perf_counter() - t) * 1000)
    return {"rows": imported, "import_s": round(import_s, 2), "series_rows": len(df), "last_rows": len(recent),
            "series_ms": {"best": min(series_ms), "median": float(np.median(series_ms))},
            "last_1000_ms": {"best": min(last_ms), "median": float(np.median(last_ms))}}


def replay_figures(lab: Lab) -> dict:
    # a quiet lab: the field index of the throughput run is built first (it competes for the two cores)
    deadline = time.time() + 300
    while lab.history.stats()["index_lag"] and time.time() < deadline:
        time.sleep(0.2)
    client = lab.mqtt_client()
    for i in range(2000):
        client.publish(f"incident/{i % 10}", json.dumps({"i": i}), qos=0)
        time.sleep(0.0005)  # the incident's own pacing (what the 1x replay must reproduce)
    lab.history.wait_for(2000, topic="incident/#")
    one = lab.history.replay(topic="incident/#", speed=1.0, to_prefix="replay1x", progress=False)
    big = lab.history.table(topic="devices/+/telemetry", limit=200_000)
    fast = lab.history.replay(source=big, speed="max", to_prefix="replaymax", progress=False)
    return {"one_x": {"sent": one.sent, "timing_error_ms": one.timing_error_ms},  # type: ignore[union-attr]
            "max": {"sent": fast.sent, "rate_msg_s": round(fast.rate_msg_s)}}  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Lab.local(tmp) as lab:
        rec = recorder_throughput(lab, args.rate, args.seconds)
        rep = replay_figures(lab)
        q = query_times(lab, args.rows, Path(tmp))
    report("history", {"recorder": rec, "queries": q, "replay": rep}, [
        ("offered / recorded (msg)", f"{rec['offered']:,} / {rec['stored']:,}", "all, zero loss"),
        ("offered rate (msg/s)", f"{rec['offered_rate']:,}", ">= 50,000"),
        ("recorded rate incl. drain (msg/s)", f"{rec['record_rate']:,}", ""),
        ("stamped sequence gaps", f"{rec['stamped_missing']}", "0"),
        ("series over 1M rows (ms, best/median)", f"{q['series_ms']['best']:.1f}/{q['series_ms']['median']:.1f}", "< 100"),
        ("last 1,000 of a device (ms)", f"{q['last_1000_ms']['best']:.1f}/{q['last_1000_ms']['median']:.1f}", "< 20"),
        ("replay 1x timing error p99 (ms)", f"{rep['one_x']['timing_error_ms']['p99']:.2f}", "< 2"),
        ("replay max (msg/s)", f"{rep['max']['rate_msg_s']:,}", ">= 50,000"),
    ])


if __name__ == "__main__":
    main()
