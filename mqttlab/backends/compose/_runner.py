"""One command runner for ``docker compose`` that turns its stderr into typed errors with hints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ...errors import ConfigError, MqttlabError, PortInUseError


class DockerUnavailableError(MqttlabError):
    """No Docker CLI, or no engine behind it: the compose backend cannot run here."""


class ComposeError(MqttlabError):
    """``docker compose`` failed; the message carries the end of its stderr."""


def classify(stderr: str, env_file: Path) -> MqttlabError:
    """The typed error for what ``docker compose`` printed."""
    text = stderr.strip()
    tail = "\n".join(text.splitlines()[-6:])
    lower = text.lower()
    if "cannot connect to the docker daemon" in lower or ("docker.sock" in lower and (
            "permission denied" in lower or "no such file" in lower)) or "is the docker daemon running" in lower:
        return DockerUnavailableError(f"no Docker engine is reachable: {tail}",
                                      hint="start Docker (or add yourself to the docker group); the local backend, "
                                           "Lab.local(), needs no Docker")
    if "port is already allocated" in lower or "address already in use" in lower:
        return PortInUseError(f"a port of the compose stack is taken: {tail}",
                              hint=f"change the *_PORT values in {env_file} or stop what holds the port")
    if "required variable" in lower or "is missing a value" in lower:
        return ConfigError(f"compose needs a setting: {tail}",
                           hint=f"fill it in {env_file} (see compose/.env.example), or run `mqttlab compose init`")
    if "pull access denied" in lower or "manifest unknown" in lower or "not found: manifest" in lower:
        return ComposeError(f"an image could not be pulled: {tail}", hint="check the *_VERSION tags in .env")
    return ComposeError(f"docker compose failed: {tail}",
                        hint="run the same command with --verbose, or see `docker compose logs`")


def docker_binary() -> str:
    binary = shutil.which("docker")
    if binary is None:
        raise DockerUnavailableError("the docker CLI is not installed",
                                     hint="install Docker Engine with the compose plugin; Lab.local() needs no Docker")
    return binary


def run_compose(args: list[str], *, project: str, compose_dir: Path, env_file: Path, profiles: tuple[str, ...] = (),
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``docker compose -p <project> ... <args>``; raises a typed error on failure."""
    cmd = [docker_binary(), "compose", "--project-name", project, "--project-directory", str(compose_dir),
           "-f", str(compose_dir / "docker-compose.yml"), "--env-file", str(env_file)]
    for profile in profiles:
        cmd += ["--profile", profile]
    proc = subprocess.run(cmd + args, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise classify(proc.stderr or proc.stdout, env_file)
    return proc
