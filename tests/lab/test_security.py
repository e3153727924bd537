"""Authentication, ACL confinement and TLS against the real broker of the session lab."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqttlab import Device, Lab, MqttConnectError
from mqttlab.mqtt import connect_and_wait, make_client
from mqttlab.pki import CertificateAuthority
from mqttlab.testing import MessageCollector, subscribe_and_wait

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_anonymous_is_refused(lab: Lab, protocol: str) -> None:
    endpoint = lab.broker_endpoint("tcp")
    client = make_client(endpoint, username=None, password=None, protocol=protocol)
    with pytest.raises(MqttConnectError, match="refused"):
        connect_and_wait(client, endpoint, timeout=5)


def test_wrong_password_is_refused(lab: Lab, make_device: Callable[..., Device]) -> None:
    dev = make_device()
    with pytest.raises(MqttConnectError, match="refused"):
        lab.mqtt_client(username=dev.id, password=dev.password + "x")


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_device_confined_to_its_own_topics(lab: Lab, make_device: Callable[..., Device], protocol: str) -> None:
    a, b = make_device(), make_device()
    watcher = MessageCollector(lab.mqtt_client())
    assert watcher.subscribe("devices/#", qos=1).granted

    dev_a = lab.mqtt_client(device=a, protocol=protocol)
    collector_a = MessageCollector(dev_a)
    # Reading: SUBSCRIBE to another device's tree, to everything, or to $SYS is refused in the SUBACK.
    refused = 0x87 if protocol == "5" else 0x80
    for topic in (f"devices/{b.id}/#", "#", "devices/+/telemetry", "$SYS/#", f"$aws/things/{b.id}/shadow/get"):
        sub = collector_a.subscribe(topic, qos=1)
        assert sub.values == [refused], f"{topic}: {sub.values}"
    own = collector_a.subscribe(f"devices/{a.id}/#", qos=1)
    assert own.granted and own.values == [1]

    # Writing to another device's topic: never delivered. The marker after it proves ordering.
    info = dev_a.publish(f"devices/{b.id}/telemetry", b"forged", qos=1)
    info.wait_for_publish(5)
    dev_a.publish(f"devices/{a.id}/telemetry", b"marker", qos=1).wait_for_publish(5)
    msgs = watcher.wait_for(lambda ms: any(m.payload == b"marker" for m in ms), what="the marker")
    assert not any(m.payload == b"forged" for m in msgs)
    # its own message reached its own subscription too
    collector_a.wait_for(lambda ms: any(m.payload == b"marker" for m in ms), what="own marker")

    # and device b, subscribed to its own tree, never sees the forged message
    dev_b = MessageCollector(lab.mqtt_client(device=b, protocol=protocol))
    assert dev_b.subscribe(f"devices/{b.id}/#", qos=1).granted
    lab.mqtt_client().publish(f"devices/{b.id}/cmd", b"from-admin", qos=1).wait_for_publish(5)
    got = dev_b.wait_for(lambda ms: any(m.payload == b"from-admin" for m in ms), what="admin command")
    assert [m.payload for m in got] == [b"from-admin"]


def test_denied_qos1_publish_gets_not_authorized_puback(lab: Lab, make_device: Callable[..., Device]) -> None:
    a, b = make_device(), make_device()
    client = lab.mqtt_client(device=a)
    acks: dict[int, int] = {}
    client.on_publish = lambda c, u, mid, rc, props: acks.__setitem__(mid, rc.value)
    info = client.publish(f"devices/{b.id}/x", b"nope", qos=1)
    info.wait_for_publish(5)
    own = client.publish(f"devices/{a.id}/x", b"yes", qos=1)
    own.wait_for_publish(5)
    # mosquitto answers 0x87 (not authorized); 0x10 (no matching subscribers) for the allowed one
    assert acks[info.mid] == 0x87
    assert acks[own.mid] in (0x00, 0x10)


def test_tls_verifies_with_lab_ca_and_fails_with_another(lab: Lab, tmp_path: Path) -> None:
    client = lab.mqtt_client(transport="tls")
    assert client.is_connected()
    other = CertificateAuthority(tmp_path / "other-ca")
    endpoint = lab.broker_endpoint("tls")
    wrong = make_client(type(endpoint)(endpoint.host, endpoint.port, "tls", ca_file=str(other.cert_path)),
                        username=lab.admin[0], password=lab.admin[1])
    with pytest.raises(MqttConnectError) as err:
        connect_and_wait(wrong, endpoint, timeout=5)
    assert isinstance(err.value.__cause__, ssl.SSLCertVerificationError)


def test_client_cert_listener(lab: Lab, make_device: Callable[..., Device]) -> None:
    dev = make_device(auth="cert")
    client = lab.mqtt_client(device=dev, transport="mtls")
    coll = MessageCollector(client)
    assert coll.subscribe(f"devices/{dev.id}/#", qos=1).granted
    assert coll.subscribe("devices/#", qos=1).values == [0x87]  # the cert's CN is its identity
    client.publish(f"devices/{dev.id}/telemetry", b"via-cert", qos=1)
    coll.wait_topic(f"devices/{dev.id}/telemetry")

    # without a certificate the TLS handshake itself is rejected, even with a valid password
    endpoint = lab.broker_endpoint("mtls")
    bare = make_client(endpoint, username=lab.admin[0], password=lab.admin[1])
    with pytest.raises(MqttConnectError):
        connect_and_wait(bare, endpoint, timeout=5)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
@pytest.mark.parametrize("transport", ["tcp", "tls", "ws"])
def test_round_trip_every_transport_and_protocol(lab: Lab, topic_ns: str, protocol: str, transport: str) -> None:
    client = lab.mqtt_client(transport=transport, protocol=protocol)  # type: ignore[arg-type]
    coll = MessageCollector(client)
    coll.subscribe(f"{topic_ns}/#", qos=2)
    for qos in (0, 1, 2):
        client.publish(f"{topic_ns}/q{qos}", f"qos{qos}".encode(), qos=qos)
    msgs = coll.wait_count(3)
    assert sorted(m.payload for m in msgs) == [b"qos0", b"qos1", b"qos2"]


def test_websocket_is_served_on_the_lab_host_only(lab: Lab) -> None:
    import psutil

    status = lab.status()
    pid = status["components"]["services"]["pid"]
    listening = {c.laddr.port: c.laddr.ip for c in psutil.Process(pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listening[status["mqtt"]["ws_port"]] == "127.0.0.1"
    mosq = status["components"]["mosquitto"]["pid"]
    assert all(c.laddr.ip == "127.0.0.1" for c in psutil.Process(mosq).net_connections("inet")
               if c.status == psutil.CONN_LISTEN)


def test_runtime_device_add_and_remove(lab: Lab) -> None:
    dev_id = f"rt-{uuid.uuid4().hex[:6]}"
    dev = lab.devices.add(dev_id)
    assert lab.devices.add(dev_id) == dev  # idempotent
    client = lab.mqtt_client(device=dev)
    assert client.is_connected()
    client.disconnect()
    lab.devices.remove(dev_id)
    assert dev_id not in lab.devices
    with pytest.raises(MqttConnectError):
        lab.mqtt_client(username=dev.id, password=dev.password)


def test_raw_paho_client_with_status_credentials(lab: Lab) -> None:
    """What a script that only has `status --json` does: plain paho with those fields."""
    doc = lab.status()["mqtt"]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(doc["username"], doc["password"])
    client.tls_set(ca_certs=doc["ca_file"])
    endpoint = lab.broker_endpoint("tls")
    connect_and_wait(client, endpoint)
    assert subscribe_and_wait(client, "devices/#").granted
    client.disconnect()
    client.loop_stop()
