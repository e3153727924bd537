"""Child processes of the local stack: spawn detached, identify safely, stop with SIGTERM first."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ..._wait import wait_until
from ...errors import ReadinessTimeout

log = logging.getLogger(__name__)


@dataclass
class ManagedProcess:
    """One process of the stack, known by pid plus start time so a recycled pid is never signalled."""

    name: str
    pid: int
    create_time: float
    argv: list[str]
    log_file: str
    _popen: subprocess.Popen[bytes] | None = None

    @classmethod
    def spawn(cls, name: str, argv: list[str], log_file: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> ManagedProcess:
        """Start ``argv`` in its own session (a Ctrl-C in a notebook or CLI does not reach it)."""
        with open(log_file, "ab") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env, cwd=cwd, close_fds=True,
            )
        try:
            created = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            created = 0.0
        return cls(name, popen.pid, created, argv, str(log_file), popen)

    @classmethod
    def from_record(cls, name: str, record: dict[str, Any]) -> ManagedProcess:
        return cls(name, int(record["pid"]), float(record["create_time"]), list(record["argv"]), record["log_file"])

    def record(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time, "argv": self.argv, "log_file": self.log_file}

    def _process(self) -> psutil.Process | None:
        if self._popen is not None and self._popen.poll() is not None:
            return None
        try:
            proc = psutil.Process(self.pid)
            if self.create_time and abs(proc.create_time() - self.create_time) > 1.0:
                return None  # the pid now belongs to someone else
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        return self._process() is not None

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def rss_bytes(self) -> int:
        proc = self._process()
        try:
            return int(proc.memory_info().rss) if proc else 0
        except psutil.Error:
            return 0

    def signal(self, sig: int) -> bool:
        proc = self._process()
        if proc is None:
            return False
        try:
            proc.send_signal(sig)
            return True
        except psutil.Error:
            return False

    def _wait_gone(self, timeout: float) -> bool:
        """Wait until the process is gone or a zombie; an orphan's zombie may never be reaped here."""
        if self._popen is not None:
            try:
                self._popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        try:
            wait_until(lambda: self._process() is None, timeout=timeout, what=f"{self.name} to exit",
                       interval=0.002, max_interval=0.02)
            return True
        except ReadinessTimeout:
            return False

    def stop(self, timeout: float) -> str:
        """SIGTERM, wait up to ``timeout``; SIGKILL only if it did not exit. Returns how it ended."""
        proc = self._process()
        if proc is None:
            self._reap()
            return "not running"
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            self._reap()
            return "terminated"
        outcome = "terminated"
        if not self._wait_gone(timeout):
            log.warning("%s (pid %s) ignored SIGTERM for %.0fs; killing it", self.name, self.pid, timeout)
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
            self._wait_gone(5)
            outcome = "killed"
        self._reap()
        return outcome

    def _reap(self) -> None:
        if self._popen is not None:
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def log_tail(path: str | os.PathLike[str], lines: int = 40) -> str:
    """The last ``lines`` of a log file ('' if absent)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
