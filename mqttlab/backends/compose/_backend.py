"""ComposeBackend: ``docker compose`` for lifecycle, the docker SDK for status, logs and fault injection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..._state import RUN_FILE, ensure_state_dir, load_identity, read_json, write_json
from ..._wait import wait_until
from ...errors import ConfigError, LabNotRunningError
from ...mqtt import BrokerEndpoint
from ._env import ensure_env, read_env
from ._runner import DockerUnavailableError, run_compose

SERVICES = ("emqx", "influxdb", "services", "prometheus", "grafana")


def find_compose_dir(explicit: str | Path | None = None) -> Path:
    import os

    for cand in (explicit, os.environ.get("MQTTLAB_COMPOSE_DIR"), Path.cwd() / "compose", Path.cwd().parent / "compose"):
        if cand and (Path(cand) / "docker-compose.yml").is_file():
            return Path(cand).resolve()
    raise ConfigError("no compose/docker-compose.yml found",
                      hint="run from the mqttlab repository, pass compose_dir=, or set MQTTLAB_COMPOSE_DIR")


class ComposeBackend:
    """One compose project per lab state dir (project ``mqttlab-<lab id>``)."""

    name = "compose"

    def __init__(self, state_dir: Path, compose_dir: Path | None = None, profiles: tuple[str, ...] = ("observability",),
                 ready_timeout: float = 600) -> None:
        self.state_dir = state_dir
        self.compose_dir = compose_dir
        self.profiles = profiles
        self.ready_timeout = ready_timeout
        self._run: dict[str, Any] = {}

    # ------------------------------------------------------------------ plumbing
    def _docker(self) -> Any:
        try:
            import docker

            client = docker.from_env(timeout=5)
            client.ping()
            return client
        except ImportError:
            raise DockerUnavailableError("the docker package is not installed", hint="pip install 'mqttlab[compose]'") from None
        except Exception as exc:  # docker.errors.DockerException and socket errors alike mean: no engine
            raise DockerUnavailableError(f"no Docker engine is reachable ({type(exc).__name__}: {exc})",
                                         hint="start Docker; the local backend, Lab.local(), needs no Docker") from None

    @property
    def project(self) -> str:
        return f"mqttlab-{load_identity(self.state_dir)['lab_id']}"

    def _env(self) -> dict[str, str]:
        return read_env(Path(self._require_run()["env_file"]))

    def _compose(self, *args: str) -> None:
        run = self._require_run()
        run_compose(list(args), project=run["project"], compose_dir=Path(run["compose_dir"]),
                    env_file=Path(run["env_file"]), profiles=tuple(run["profiles"]))

    def _containers(self) -> dict[str, Any]:
        client = self._docker()
        found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self._run['project']}"})
        return {c.labels.get("com.docker.compose.service", c.name): c for c in found}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> bool:
        ensure_state_dir(self.state_dir)
        compose_dir = find_compose_dir(self.compose_dir)
        self._docker()  # fail fast, with the hint, before anything is written
        env_file = ensure_env(compose_dir)  # the stack's init service writes generated/ from it
        self._run = {"backend": "compose", "project": self.project, "compose_dir": str(compose_dir),
                     "env_file": str(env_file), "profiles": list(self.profiles), "started_at": time.time()}
        write_json(self.state_dir / RUN_FILE, self._run)
        try:
            self._compose("up", "--detach", "--wait", "--wait-timeout", str(int(self.ready_timeout)))
        except BaseException:
            self.stop()
            raise
        return True

    def stop(self) -> dict[str, str]:
        if not self._run and not self.load_running():
            return {}
        self._compose("down", "--remove-orphans")
        (self.state_dir / RUN_FILE).unlink(missing_ok=True)
        self._run = {}
        return dict.fromkeys(SERVICES, "stopped")

    def load_running(self) -> bool:
        run = read_json(self.state_dir / RUN_FILE)
        if run is None or run.get("backend") != "compose":
            return False
        self._run = run
        return True

    def _require_run(self) -> dict[str, Any]:
        if not self._run and not self.load_running():
            raise LabNotRunningError(f"no compose lab is running from {self.state_dir}",
                                     hint="start one with Lab.compose() or `mqttlab up --backend compose`")
        return self._run

    def restart(self, service: str) -> None:
        container = self._containers().get(service)
        if container is None:
            raise ConfigError(f"no {service} container in project {self._run['project']}", hint=f"one of {SERVICES}")
        container.restart(timeout=10)
        self._wait_healthy(service)

    def signal(self, service: str, sig: int) -> bool:
        container = self._containers().get(service)
        if container is None:
            return False
        container.kill(signal=sig)
        return True

    def _wait_healthy(self, service: str) -> None:
        def healthy() -> bool:
            c = self._containers().get(service)
            if c is None:
                return False
            c.reload()
            health = c.attrs.get("State", {}).get("Health", {}).get("Status")
            return c.status == "running" and health in (None, "healthy")

        wait_until(healthy, timeout=120, what=f"{service} to be healthy", interval=0.2, max_interval=1.0)

    # ------------------------------------------------------------------ facts
    def is_live(self) -> bool:
        try:
            c = self._containers().get("emqx")
            return c is not None and c.status == "running"
        except DockerUnavailableError:
            return False

    def broker_endpoint(self, transport: str) -> BrokerEndpoint:
        env = self._env()
        ports = {"tcp": env.get("MQTT_PORT", "1883"), "tls": env.get("MQTTS_PORT", "8883"),
                 "mtls": env.get("MQTTS_CLIENT_CERT_PORT", "8885"), "ws": env.get("WS_PORT", "8083")}
        if transport not in ports:
            raise ConfigError(f"unknown transport {transport!r}", hint="use tcp, tls, mtls or ws")
        ca = Path(self._run["compose_dir"]) / "generated" / "certs" / "ca.pem"
        return BrokerEndpoint("127.0.0.1", int(ports[transport]), transport, ca_file=str(ca))  # type: ignore[arg-type]

    def admin_credentials(self) -> tuple[str, str]:
        env = self._env()
        return env["MQTTLAB_ADMIN_USER"], env["MQTTLAB_ADMIN_PASSWORD"]

    def api_credentials(self) -> tuple[str, str]:
        env = self._env()
        return env["MQTTLAB_API_KEY"], env["MQTTLAB_API_SECRET"]

    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._env().get('SERVICES_PORT', '8080')}"

    def rules_api_url(self) -> str:
        return f"http://127.0.0.1:{self._env().get('EMQX_DASHBOARD_PORT', '18083')}"

    def device_applier(self, lab: Any) -> Any:
        from ...devices import EmqxApplier

        return EmqxApplier(self.rules_api_url(), self.api_credentials())

    def logs(self, service: str, lines: int = 100) -> str:
        container = self._containers().get(service)
        if container is None:
            raise ConfigError(f"no {service} container", hint=f"one of {', '.join(SERVICES)}")
        text: str = container.logs(tail=lines).decode(errors="replace")
        return text

    def status(self) -> dict[str, Any]:
        base: dict[str, Any] = {"backend": "compose", "running": False, "state_dir": str(self.state_dir)}
        if not self.load_running():
            return base
        env = self._env()
        components: dict[str, Any] = {}
        try:
            for name, c in self._containers().items():
                if name == "init":
                    continue
                health = c.attrs.get("State", {}).get("Health", {}).get("Status")
                components[name] = {"running": c.status == "running", "healthy": health in (None, "healthy"),
                                    "container": c.name, "image": c.attrs.get("Config", {}).get("Image")}
        except DockerUnavailableError:
            pass
        tcp, tls = self.broker_endpoint("tcp"), self.broker_endpoint("tls")
        api = self.api_url()
        return {
            **base,
            "running": bool(components) and all(c["running"] and c["healthy"] for c in components.values()),
            "lab_id": load_identity(self.state_dir)["lab_id"], "project": self._run["project"],
            "started_at": self._run.get("started_at"),
            "mqtt": {"host": "127.0.0.1", "tcp_port": tcp.port, "tls_port": tls.port,
                     "tls_client_cert_port": self.broker_endpoint("mtls").port, "ws_port": self.broker_endpoint("ws").port,
                     "ws_path": "/mqtt", "username": env["MQTTLAB_ADMIN_USER"], "password": env["MQTTLAB_ADMIN_PASSWORD"],
                     "ca_file": tls.ca_file},
            "api": {"url": api, "key": env["MQTTLAB_API_KEY"], "secret": env["MQTTLAB_API_SECRET"], "docs_url": f"{api}/docs",
                    "emqx_url": self.rules_api_url()},
            "metrics_url": f"{api}/metrics",
            "components": components,
        }
