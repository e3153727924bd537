"""Fleet building blocks without a broker: wire codec, sequence checks, schedules, profiles, stamps."""

from __future__ import annotations

import itertools
import json
import random
import statistics

import pytest

from mqttlab import ConfigError
from mqttlab.aio import _wire as w
from mqttlab.fleet import Rate, SeqTracker, binary_stamp, parse_url, read_stamp
from mqttlab.fleet._profiles import make_profile

pytestmark = pytest.mark.unit


def test_connect_packet_matches_the_spec_example() -> None:
    # MQTT 3.1.1, client id "a", clean session, keepalive 60, no credentials
    assert w.connect_packet("a", version=4, keepalive=60) == bytes.fromhex("100d00044d5154540402003c000161")


def test_publish_round_trip_with_long_payload_and_properties() -> None:
    first, topic = w.publish_prefix("devices/d1/telemetry", 1, retain=True)
    props = w.encode_properties({"user_property": [("seq", "7"), ("ts", "123")], "message_expiry": 60})
    packet = w.publish_packet(first, topic, b"x" * 300, packet_id=42, props=props)
    length, body = w.read_varint(packet, 1)
    assert body + length == len(packet) and length > 127  # a two-byte remaining length
    pkt = w.decode(packet[0] >> 4, packet[0] & 0x0F, memoryview(packet)[body:], 5)
    assert (pkt.topic, pkt.packet_id, pkt.qos, pkt.retain, pkt.payload) == ("devices/d1/telemetry", 42, 1, True, b"x" * 300)
    assert pkt.properties == {"user_property": [("seq", "7"), ("ts", "123")], "message_expiry": 60}


def test_varint_limits() -> None:
    for n in (0, 127, 128, 16383, 16384, 268_435_455):
        assert w.read_varint(w.varint(n), 0) == (n, len(w.varint(n)))
    with pytest.raises(w.ProtocolError):
        w.read_varint(b"\xff\xff\xff\xff\x01", 0)


def test_sequence_tracker_is_exact() -> None:
    t = SeqTracker()
    for seq in [0, 1, 3, 3, 2, 5]:  # 4 never comes, 3 twice, 2 late
        t.observe("dev", seq)
    assert t.finish({"dev": 7}) == {"received": 6, "lost": 2, "duplicates": 1, "reordered": 1, "publishers": 1}


def test_fixed_rate_does_not_drift() -> None:
    offsets = Rate(3.0).offsets(random.Random(1))
    values = [next(offsets) for _ in range(300_001)]
    assert values[300_000] == pytest.approx(100_000.0, abs=1e-6)


def test_poisson_and_burst_rates() -> None:
    poisson = Rate(50.0, "poisson").offsets(random.Random(1))
    times = [next(poisson) for _ in range(20_000)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(0.02, rel=0.05)
    burst = Rate(10.0, "burst", burst_size=5).offsets(random.Random(1))
    first = [next(burst) for _ in range(10)]
    assert first[:5] == [0.0] * 5 and first[5:] == [0.5] * 5  # 5 at once, average still 10/s


@pytest.mark.parametrize("bad", [dict(per_second=0), dict(per_second=-1), dict(pattern="sometimes")])
def test_bad_rates(bad: dict) -> None:
    with pytest.raises(ConfigError):
        Rate(**bad)


def test_profiles_are_seeded_and_per_device() -> None:
    a1 = [make_profile("gps_tracker", "d1", 7).sample(float(t)) for t in range(3)]
    a2 = [make_profile("gps_tracker", "d1", 7).sample(float(t)) for t in range(3)]
    b = [make_profile("gps_tracker", "d2", 7).sample(float(t)) for t in range(3)]
    assert a1 == a2 and a1 != b


def test_industrial_sensor_has_faults_outliers_and_dropouts() -> None:
    sensor = make_profile("industrial_sensor", "m1", 3)
    samples = [sensor.sample(float(t)) for t in range(5000)]
    statuses = [s.get("status") for s in samples if s]
    assert sum(1 for s in samples if not s) > 50, "dropouts"
    assert statuses.count("outlier") > 10 and statuses.count("fault:stuck") > 10


def test_smart_meter_energy_is_monotonic_and_thermostat_clamps() -> None:
    meter = make_profile("smart_meter", "m", 1)
    energy = [meter.sample(t * 60.0)["energy_kwh"] for t in range(500)]
    assert all(b >= a for a, b in itertools.pairwise(energy)) and energy[-1] > energy[0]
    thermostat = make_profile("thermostat", "t", 1)
    assert thermostat.apply({"setpoint": 99}) == {"setpoint": 30.0}


def test_custom_function_profile_keeps_state() -> None:
    def counter(device_id: str, t: float, rng: random.Random, state: dict) -> dict:
        state["n"] = state.get("n", 0) + 1
        return {"n": state["n"], "id": device_id}

    p = make_profile(counter, "c1", 0)
    assert [p.sample(0.0)["n"] for _ in range(3)] == [1, 2, 3]
    with pytest.raises(ConfigError, match="built-in profiles"):
        make_profile("toaster", "x", 0)


def test_stamps() -> None:
    assert read_stamp(binary_stamp(9, 64, 123)) == (9, 123) and len(binary_stamp(9, 64)) == 64
    assert read_stamp(json.dumps({"seq": 4, "ts": 5}).encode()) == (4, 5)
    assert read_stamp(b"{}", [("seq", "3"), ("ts", "8")]) == (3, 8)
    assert read_stamp(b"not stamped") is None


def test_broker_urls() -> None:
    t = parse_url("mqtts://user:p%40ss@broker.example:8883")
    assert (t.host, t.port, t.transport, t.username, t.password) == ("broker.example", 8883, "tls", "user", "p@ss")
    assert parse_url("ws://h/mqtt").port == 8083
    with pytest.raises(ConfigError, match="not a broker URL"):
        parse_url("http://h")
