"""Shared test helpers. Fixtures (lab, fresh_lab, topic_ns, make_device) come from mqttlab.testing.plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``mqttlab`` console entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mqttlab.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


def processes_of(state_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line points into ``state_dir``."""
    marker = str(state_dir)
    out = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if any(marker in part for part in (proc.info.get("cmdline") or [])):
            out.append(proc)
    return out
