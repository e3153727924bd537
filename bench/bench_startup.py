"""How fast `mqttlab up` is ready, how much the idle stack weighs, how fast `down` is.

    python bench/bench_startup.py [--runs 10]

Targets (issue 2): `mqttlab up` ready < 1.5 s (plan allows 10 s); idle stack < 150 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import report, summarize


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqttlab.cli", *args], capture_output=True, text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    up_s, down_s, rss_mib = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            sd = str(Path(tmp) / f"lab{i}")  # a fresh state dir: includes CA and cert generation
            t0 = time.perf_counter()
            cli("up", "--state-dir", sd)
            up_s.append(time.perf_counter() - t0)
            doc = json.loads(cli("status", "--json", "--state-dir", sd).stdout)
            rss_mib.append(sum(c["rss_bytes"] for c in doc["components"].values()) / 2**20)
            t0 = time.perf_counter()
            cli("down", "--state-dir", sd)
            down_s.append(time.perf_counter() - t0)
    up, down, rss = summarize(up_s), summarize(down_s), summarize(rss_mib)
    report("startup", {"up_seconds": up, "down_seconds": down, "idle_rss_mib": rss},
           [("`mqttlab up` ready p50 (s)", f"{up['p50']:.3f}", "target < 1.5"),
            ("`mqttlab up` ready max (s)", f"{up['max']:.3f}", "target < 1.5"),
            ("`mqttlab down` p50 (s)", f"{down['p50']:.3f}", ""),
            ("idle stack RSS max (MiB)", f"{rss['max']:.1f}", "target < 150")])


if __name__ == "__main__":
    main()
