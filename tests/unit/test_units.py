"""Pure-code checks: password hashing, device ids, config, state files, PKI."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path

import pytest

from mqttlab import ConfigError, DeviceError, Ports, StateDirError
from mqttlab._state import load_identity, read_json
from mqttlab.devices import config_document, load_seed, validate_device_id
from mqttlab.devices._dynsec import hash_password
from mqttlab.pki import CertificateAuthority

pytestmark = pytest.mark.unit


def test_password_hash_matches_mosquitto_ctrl_vector() -> None:
    # written by `mosquitto_ctrl dynsec init f admin s3cret` (mosquitto 2.0.11)
    salt = base64.b64decode("zpdPvN7Q+/XqDm+f")
    got = hash_password("s3cret", salt)
    assert got["password"] == (
        "83UmmquZMIDwuMotGlE9dY8KLRu7XoJ7x6MIRlAUsjb+sFF32m19QP/d8uNHFL8uf15hoJNsH/JwG2tGMvjC5A=="
    )
    assert got["iterations"] == 101


@pytest.mark.parametrize("good", ["thermo-1", "a", "x:y_z-1", "A" * 128])
def test_valid_device_ids(good: str) -> None:
    assert validate_device_id(good) == good


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "#", "$sys", "a b", "A" * 129, "é"])
def test_invalid_device_ids_name_the_rule(bad: str) -> None:
    with pytest.raises(DeviceError) as err:
        validate_device_id(bad)
    assert "A-Z a-z 0-9" in (err.value.hint or "")


def test_dynsec_document_confines_each_device() -> None:
    doc = config_document("admin", "pw", [{"id": "d1", "password": "x"}])
    role = next(r for r in doc["roles"] if r["rolename"] == "device-d1")
    topics = {(a["acltype"], a["topic"]) for a in role["acls"]}
    assert ("publishClientSend", "devices/d1/#") in topics
    assert ("subscribePattern", "$aws/things/d1/#") in topics
    assert not any(t == "#" for _, t in topics)
    assert doc["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": True,
                                       "subscribe": False, "unsubscribe": True}


def test_ports_out_of_range() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        Ports(mqtt=70000)


def test_corrupt_state_file_names_the_file_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("{not json")
    with pytest.raises(StateDirError) as err:
        read_json(path)
    assert str(path) in err.value.message and "line 1" in err.value.message
    assert "delete" in (err.value.hint or "")


def test_identity_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTTLAB_ADMIN_PASSWORD", "from-env-pw")
    ident = load_identity(tmp_path)
    assert ident["admin_password"] == "from-env-pw"
    assert (tmp_path / "lab.json").stat().st_mode & 0o077 == 0  # credentials are private
    assert load_identity(tmp_path)["api_secret"] == ident["api_secret"]  # stable per state dir


def test_identity_generated_when_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MQTTLAB_ADMIN_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = load_identity(tmp_path / "a"), load_identity(tmp_path / "b")
    assert a["admin_password"] != b["admin_password"] and len(a["admin_password"]) >= 20


def test_seed_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "devices.json"
    bad.write_text('{"devices": [{"id": "ok-1"}, {"id": "no/slash"}]}')
    with pytest.raises(DeviceError):
        load_seed(bad)
    bad.write_text("[1,")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_seed(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"devices": ["a", {"id": "b", "auth": "cert"}]}))
    assert [d["id"] for d in load_seed(good)] == ["a", "b"]


def test_pki_issues_verifiable_chain(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "tls")
    server = ca.server_cert(tmp_path / "tls")
    client = ca.client_cert(tmp_path / "tls" / "devices", "dev-1")
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.load_cert_chain(str(client.cert), str(client.key))  # key matches cert
    assert (tmp_path / "tls" / "ca.key").stat().st_mode & 0o077 == 0
    assert server.cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    # reopening reuses the same CA
    assert CertificateAuthority(tmp_path / "tls").cert_path.read_bytes() == ca.cert_path.read_bytes()


def test_compose_tier_skip_reason_names_docker() -> None:
    from mqttlab.testing.plugin import _docker_unavailable

    reason = _docker_unavailable()
    # on machines with an engine the compose tier runs; here (no engine) it must say why it skips
    assert reason is None or ("Docker engine" in reason and "compose tier" in reason)
