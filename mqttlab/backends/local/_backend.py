"""LocalBackend: start, attach to, inspect and stop the embedded stack of one state directory."""

from __future__ import annotations

import http.client
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from ..._state import RUN_FILE, ensure_state_dir, load_identity, read_json, write_json
from ..._wait import free_port, port_free, port_open, wait_until
from ...config import PORT_NAMES, LabConfig
from ...devices._dynsec import config_document
from ...devices._registry import RegistryFile, load_seed
from ...errors import ConfigError, LabNotRunningError, PortInUseError, StartupError, StateDirError
from ...mqtt import BrokerEndpoint
from ...pki import CertificateAuthority
from . import _mosquitto
from ._process import ManagedProcess, log_tail

log = logging.getLogger(__name__)
SERVICES = ("mosquitto", "services")


def _holder(port: int) -> str:
    try:
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f" (held by pid {conn.pid}, {psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return ""


class LocalBackend:
    """One local stack, identified by its state directory."""

    name = "local"

    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self.state_dir = cfg.state_dir
        self._procs: dict[str, ManagedProcess] = {}
        self._run: dict[str, Any] = {}
        self._identity: dict[str, Any] = {}

    # ----------------------------------------------------------------- files
    @property
    def _run_path(self) -> Path:
        return self.state_dir / RUN_FILE

    def _paths(self) -> _mosquitto.BrokerFiles:
        sd = self.state_dir
        return _mosquitto.BrokerFiles(
            conf=sd / "mosquitto" / "mosquitto.conf", dynsec=sd / "mosquitto" / "dynsec.json",
            data_dir=sd / "mosquitto" / "data", log=sd / "logs" / "mosquitto.log",
            ca=sd / "tls" / "ca.pem", server_cert=sd / "tls" / "server.pem", server_key=sd / "tls" / "server.key",
        )

    def load_running(self) -> bool:
        """Attach to the lab recorded in ``run.json``; False when none is recorded."""
        run = read_json(self._run_path)
        if run is None:
            return False
        self._run = run
        self._identity = load_identity(self.state_dir)
        self._procs = {name: ManagedProcess.from_record(name, rec) for name, rec in run.get("processes", {}).items()}
        return True

    # ------------------------------------------------------------- lifecycle
    def start(self) -> bool:
        ensure_state_dir(self.state_dir)
        if self.load_running():
            dead = [n for n in SERVICES if n not in self._procs or not self._procs[n].alive()]
            if not dead:
                log.info("lab in %s is already running; attached", self.state_dir)
                return False
            if len(dead) < len(SERVICES):
                for name in dead:
                    log.warning("%s of the lab in %s is not running; restarting it", name, self.state_dir)
                    self.restart(name)
                return False
            self._run_path.unlink(missing_ok=True)  # stale: nothing of it is alive
        self._identity = load_identity(self.state_dir)
        binary = _mosquitto.find_mosquitto(self.cfg.mosquitto)
        plugin = _mosquitto.find_dynsec_plugin(binary)
        files = self._paths()
        ca = CertificateAuthority(self.state_dir / "tls")
        ca.server_cert(self.state_dir / "tls")
        files.data_dir.mkdir(parents=True, exist_ok=True)
        self._seed_devices()
        explicit = {n for n, v in self.cfg.ports.as_dict().items() if v is not None}
        for attempt in range(3):
            ports = self._choose_ports()
            try:
                self._launch(binary, plugin, files, ports, explicit)
                return True
            except PortInUseError:
                self._teardown()
                if explicit or attempt == 2:
                    raise
                log.info("a free port was taken before mosquitto bound it; choosing again")
            except BaseException:
                self._teardown()
                raise
        raise AssertionError("unreachable")

    def _seed_devices(self) -> None:
        seed = self.cfg.devices_seed
        if seed is None:
            default = Path.cwd() / "config" / "devices.json"
            seed = default if default.is_file() else None
        if seed is not None:
            RegistryFile(self.state_dir).upsert(load_seed(seed))

    def _choose_ports(self) -> dict[str, int]:
        chosen: dict[str, int] = {}
        remembered = self._identity.get("ports", {})
        host = self.cfg.host
        for name in PORT_NAMES:
            wanted = getattr(self.cfg.ports, name)
            if wanted is not None:
                if not port_free(host, wanted) or wanted in chosen.values():
                    raise PortInUseError(
                        f"port {wanted} ({name}) on {host} is already in use{_holder(wanted)}",
                        hint=f"pick another port for {name} or leave it unset so mqttlab chooses a free one",
                    )
                chosen[name] = wanted
                continue
            old = remembered.get(name)
            if old and old not in chosen.values() and port_free(host, old) and port_free("0.0.0.0", old):
                chosen[name] = old
                continue
            port = free_port(host)
            while port in chosen.values():
                port = free_port(host)
            chosen[name] = port
        self._identity["ports"] = chosen
        write_json(self.state_dir / "lab.json", self._identity)
        return chosen

    def _launch(self, binary: Path, plugin: Path, files: _mosquitto.BrokerFiles, ports: dict[str, int],
                explicit: set[str]) -> None:
        ident = self._identity
        self._write_dynsec(files)
        files.conf.write_text(_mosquitto.render_config(files, plugin=plugin, host=self.cfg.host, ports=ports,
                                                       limits=self.cfg.limits))
        services_cfg = self.state_dir / "services" / "services.json"
        write_json(services_cfg, {
            "state_dir": str(self.state_dir), "broker_host": self.cfg.host, "broker_port": ports["mqtt"],
            "broker_user": ident["admin_user"], "broker_password": ident["admin_password"],
            "api_host": self.cfg.host, "api_port": ports["api"], "api_key": ident["api_key"],
            "api_secret": ident["api_secret"], "lab_id": ident["lab_id"], "backend": "local",
            "log_file": str(self.state_dir / "logs" / "services.log"),
        })
        log_start = files.log.stat().st_size if files.log.exists() else 0
        self._procs["mosquitto"] = ManagedProcess.spawn("mosquitto", [str(binary), "-c", str(files.conf)],
                                                        self.state_dir / "logs" / "mosquitto.stdout.log")
        self._procs["services"] = self._spawn_services(services_cfg)
        self._run = {"backend": "local", "host": self.cfg.host, "ports": ports, "started_at": time.time(),
                     "mosquitto_version": None, "processes": {}}
        self._save_run()
        try:
            self._wait_broker(ports, files, log_start, explicit)
            self._wait_services(ports["api"])
        except PortInUseError:
            raise
        self._run["mosquitto_version"] = _mosquitto.mosquitto_version(binary)
        self._save_run()

    def _write_dynsec(self, files: _mosquitto.BrokerFiles) -> None:
        ident = self._identity or load_identity(self.state_dir)
        devices = [d.as_dict() for d in RegistryFile(self.state_dir).devices()]
        write_json(files.dynsec, config_document(ident["admin_user"], ident["admin_password"], devices))

    def _spawn_services(self, services_cfg: Path) -> ManagedProcess:
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return ManagedProcess.spawn("services", [sys.executable, "-m", "mqttlab.services", "--config", str(services_cfg)],
                                    self.state_dir / "logs" / "services.stdout.log", env=env)

    def _save_run(self) -> None:
        self._run["processes"] = {n: p.record() for n, p in self._procs.items()}
        write_json(self._run_path, self._run)

    def _wait_broker(self, ports: dict[str, int], files: _mosquitto.BrokerFiles, log_start: int,
                     explicit: set[str]) -> None:
        proc = self._procs["mosquitto"]
        broker_ports = [ports[n] for n in ("mqtt", "mqtts", "mqtts_client_cert")]

        def died() -> None:
            if not proc.alive():
                text = log_tail(files.log, 200)
                text += "\n" + log_tail(proc.log_file, 20)
                raise _mosquitto.failure_from_log(text, {k: ports[k] for k in ports if k != "api"}, explicit)

        wait_until(lambda: all(port_open(self.cfg.host, p) for p in broker_ports), timeout=self.cfg.ready_timeout,
                   what=f"mosquitto to listen on {broker_ports}", abort=died,
                   seen=lambda: "open: " + str([p for p in broker_ports if port_open(self.cfg.host, p)]))

    def _wait_services(self, api_port: int) -> None:
        proc = self._procs["services"]
        last: dict[str, str] = {"seen": "no answer yet"}

        def died() -> None:
            if not proc.alive():
                tail = log_tail(proc.log_file, 30) or log_tail(self.state_dir / "logs" / "services.log", 30)
                if "address already in use" in tail.lower():
                    raise PortInUseError(f"the services API port {api_port} is already in use{_holder(api_port)}",
                                         hint="choose another api port or leave it unset")
                raise StartupError(f"the services process exited during start-up; its log ends:\n{tail}",
                                   hint="run `mqttlab doctor`; the full log is `mqttlab logs services`")

        def healthy() -> bool:
            code, body = http_get(self.cfg.host, api_port, "/health")
            last["seen"] = f"HTTP {code} {body[:200]}"
            return code == 200

        wait_until(healthy, timeout=self.cfg.ready_timeout, what=f"services health on :{api_port}",
                   abort=died, seen=lambda: last["seen"])

    def stop(self) -> dict[str, str]:
        if not self._procs and not self.load_running():
            return {}
        outcome = self._teardown()
        return outcome

    def _refresh_from_run_file(self) -> None:
        """Another Lab object may have restarted a component: the run file names the current processes."""
        try:
            run = read_json(self._run_path)
        except StateDirError:
            return
        if not run:
            return
        self._run = run
        for name, rec in run.get("processes", {}).items():
            mine = self._procs.get(name)
            if mine is None or mine.pid != int(rec["pid"]):
                if mine is not None:
                    mine.stop(self.cfg.stop_timeout)  # reaps our child if it is the dead one
                self._procs[name] = ManagedProcess.from_record(name, rec)

    def _teardown(self) -> dict[str, str]:
        self._refresh_from_run_file()
        outcome: dict[str, str] = {}
        for name in ("services", "mosquitto"):  # services first: it disconnects cleanly
            proc = self._procs.get(name)
            if proc is not None:
                outcome[name] = proc.stop(self.cfg.stop_timeout)
        # Only a lab that came up owns all its ports; after a failed start one may belong to someone else.
        ports = self._run.get("ports", {}) if self._run.get("mosquitto_version") else {}
        host = self._run.get("host", self.cfg.host)
        if ports:
            wait_until(lambda: not any(port_open(host, p) for p in ports.values()), timeout=5,
                       what="the lab's ports to close",
                       seen=lambda: "still open: " + str([p for p in ports.values() if port_open(host, p)]))
        self._procs.clear()
        self._run_path.unlink(missing_ok=True)
        self._run = {}
        return outcome

    def restart(self, service: str) -> None:
        """Restart one component (e.g. after a crash or a fault injection)."""
        if service not in SERVICES:
            raise ConfigError(f"unknown service {service!r}", hint=f"one of {', '.join(SERVICES)}")
        if not self._run and not self.load_running():
            raise LabNotRunningError("no lab is running here", hint="start it with `mqttlab up`")
        ports = self._run["ports"]
        old = self._procs.get(service)
        if old is not None:
            old.stop(self.cfg.stop_timeout)
        if service == "mosquitto":
            files = self._paths()
            binary = _mosquitto.find_mosquitto(self.cfg.mosquitto)
            self._write_dynsec(files)  # devices registered while it was down, or in bulk, take effect now
            log_start = files.log.stat().st_size if files.log.exists() else 0
            self._procs["mosquitto"] = ManagedProcess.spawn("mosquitto", [str(binary), "-c", str(files.conf)],
                                                            self.state_dir / "logs" / "mosquitto.stdout.log")
            self._save_run()
            self._wait_broker(ports, files, log_start, set(ports))
        else:
            self._procs["services"] = self._spawn_services(self.state_dir / "services" / "services.json")
            self._save_run()
        self._wait_services(ports["api"])

    def device_applier(self, lab: Any) -> Any:
        """Registry changes go to mosquitto's dynamic-security plugin over an admin connection."""
        from ...devices import DynsecApplier

        return DynsecApplier(lambda: lab.mqtt_client(client_id=f"mqttlab-dynsec-{os.getpid()}-{id(lab):x}"),
                             live=self.is_live, reload_broker=lambda: self.restart("mosquitto"))

    def signal(self, service: str, sig: int) -> bool:
        proc = self._procs.get(service)
        return proc.signal(sig) if proc else False

    # --------------------------------------------------------------- queries
    def is_live(self) -> bool:
        proc = self._procs.get("mosquitto")
        return proc is not None and proc.alive()

    def _require_run(self) -> dict[str, Any]:
        if not self._run and not self.load_running():
            raise LabNotRunningError(f"no lab is running from {self.state_dir}",
                                     hint="start one with `mqttlab up` or Lab.local()")
        return self._run

    def broker_endpoint(self, transport: str) -> BrokerEndpoint:
        run = self._require_run()
        key = {"tcp": "mqtt", "tls": "mqtts", "mtls": "mqtts_client_cert", "ws": "api"}.get(transport)
        if key is None:
            raise ConfigError(f"unknown transport {transport!r}", hint="use tcp, tls, mtls or ws")
        return BrokerEndpoint(run["host"], run["ports"][key], transport,  # type: ignore[arg-type]
                              ca_file=str(self._paths().ca))

    def admin_credentials(self) -> tuple[str, str]:
        self._require_run()
        return self._identity["admin_user"], self._identity["admin_password"]

    def api_credentials(self) -> tuple[str, str]:
        self._require_run()
        return self._identity["api_key"], self._identity["api_secret"]

    def api_url(self) -> str:
        run = self._require_run()
        return f"http://{run['host']}:{run['ports']['api']}"

    def rules_api_url(self) -> str:
        return self.api_url()

    def logs(self, service: str, lines: int = 100) -> str:
        files = {"mosquitto": self.state_dir / "logs" / "mosquitto.log",
                 "services": self.state_dir / "logs" / "services.log"}
        if service not in files:
            raise ConfigError(f"unknown service {service!r}", hint=f"one of {', '.join(files)}")
        return log_tail(files[service], lines)

    def status(self) -> dict[str, Any]:
        run = read_json(self._run_path)
        base: dict[str, Any] = {"backend": "local", "running": False, "state_dir": str(self.state_dir)}
        if run is None:
            return base
        if not self._run:
            self.load_running()
        host, ports = run["host"], run["ports"]
        components: dict[str, Any] = {}
        for name in SERVICES:
            proc = self._procs.get(name)
            alive = proc is not None and proc.alive()
            components[name] = {"running": alive, "pid": proc.pid if proc else None,
                                "rss_bytes": proc.rss_bytes() if proc and alive else 0}
        code, _ = http_get(host, ports["api"], "/health") if components["services"]["running"] else (0, "")
        components["services"]["healthy"] = code == 200
        components["mosquitto"]["version"] = run.get("mosquitto_version")
        ident = self._identity or load_identity(self.state_dir)
        api = f"http://{host}:{ports['api']}"
        return {
            **base,
            "running": all(c["running"] for c in components.values()),
            "lab_id": ident["lab_id"],
            "started_at": run.get("started_at"),
            "mqtt": {"host": host, "tcp_port": ports["mqtt"], "tls_port": ports["mqtts"],
                     "tls_client_cert_port": ports["mqtts_client_cert"], "ws_port": ports["api"], "ws_path": "/mqtt",
                     "username": ident["admin_user"], "password": ident["admin_password"],
                     "ca_file": str(self._paths().ca)},
            "api": {"url": api, "key": ident["api_key"], "secret": ident["api_secret"], "docs_url": f"{api}/docs"},
            "metrics_url": f"{api}/metrics",
            "components": components,
        }


def http_get(host: str, port: int, path: str, timeout: float = 1.0) -> tuple[int, str]:
    """(status, body) of a GET, (0, error text) when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


