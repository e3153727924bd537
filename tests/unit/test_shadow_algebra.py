"""The shadow document algebra, rule by rule (../shared/reference/aws-shadow.md), plus a fuzz."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqttlab.twins import ShadowError, apply_update, compute_delta, full_document, parse_update
from mqttlab.twins._document import Shadow

pytestmark = pytest.mark.unit
T = 1_700_000_000


def update(shadow: Shadow | None, body: dict, now: int = T):
    return apply_update(shadow, parse_update(json.dumps(body).encode()), now)


def test_delta_is_desired_minus_reported() -> None:
    desired = {"a": 1, "b": 2, "nest": {"x": 1, "y": 2}, "arr": [1, 2], "only_desired": True}
    reported = {"a": 1, "b": 3, "nest": {"x": 1, "y": 5}, "arr": [1, 2], "only_reported": 9}
    assert compute_delta(desired, reported) == {"b": 2, "nest": {"y": 2}, "only_desired": True}


def test_delta_types_matter() -> None:
    assert compute_delta({"on": True}, {"on": 1}) == {"on": True}  # a bool is not a number
    assert compute_delta({"t": 1}, {"t": 1.0}) == {}  # JSON numbers compare by value
    assert compute_delta({"arr": [1, 2]}, {"arr": [2, 1]}) == {"arr": [1, 2]}  # arrays whole


def test_merge_null_and_arrays() -> None:
    r1 = update(None, {"state": {"desired": {"a": 1, "n": {"x": 1, "y": 2}, "arr": [1, 2, 3]}}})
    assert r1.shadow.version == 1 and r1.documents["previous"] is None
    r2 = update(r1.shadow, {"state": {"desired": {"a": None, "n": {"y": None}, "arr": [9]}}}, T + 1)
    assert r2.shadow.state["desired"] == {"n": {"x": 1}, "arr": [9]}
    assert r2.shadow.metadata["desired"] == {"n": {"x": {"timestamp": T}}, "arr": [{"timestamp": T + 1}]}
    assert r2.accepted["state"] == {"desired": {"a": None, "n": {"y": None}, "arr": [9]}}
    assert r2.accepted["metadata"]["desired"]["a"] == {"timestamp": T + 1}
    r3 = update(r2.shadow, {"state": {"desired": None}})
    assert "desired" not in r3.shadow.state and r3.accepted["metadata"] == {"desired": {"timestamp": T}}


def test_delta_document_and_metadata() -> None:
    r = update(None, {"state": {"desired": {"temp": 20, "m": {"a": 1}}, "reported": {"temp": 18, "x": 1}},
                      "clientToken": "tok"})
    assert r.delta == {"state": {"temp": 20, "m": {"a": 1}},
                       "metadata": {"temp": {"timestamp": T}, "m": {"a": {"timestamp": T}}},
                       "version": 1, "timestamp": T, "clientToken": "tok"}
    doc = full_document(r.shadow, T + 5)
    assert doc["state"]["delta"] == {"temp": 20, "m": {"a": 1}} and doc["timestamp"] == T + 5
    in_sync = update(r.shadow, {"state": {"reported": {"temp": 20, "m": {"a": 1}}}})
    assert in_sync.delta is None and "delta" not in full_document(in_sync.shadow, T)["state"]
    assert in_sync.shadow.state["desired"] == {"temp": 20, "m": {"a": 1}}  # desired is never cleared for you


def test_version_locking_and_recreate() -> None:
    r1 = update(None, {"state": {"reported": {"a": 1}}})
    with pytest.raises(ShadowError) as err:
        update(r1.shadow, {"state": {"reported": {"a": 2}}, "version": 7, "clientToken": "c"})
    assert (err.value.code, err.value.message, err.value.client_token) == (409, "Version conflict", "c")
    r2 = update(r1.shadow, {"state": {"reported": {"a": 2}}, "version": 1})
    assert r2.shadow.version == 2
    deleted = Shadow({}, {}, r2.shadow.version, T, deleted_at=T)
    assert update(deleted, {"state": {"reported": {"a": 3}}}, T + 10).shadow.version == 3  # within 48 h: continues
    assert update(deleted, {"state": {"reported": {"a": 3}}}, T + 49 * 3600).shadow.version == 1


@pytest.mark.parametrize(("payload", "code", "message"), [
    (b"{nope", 400, "Invalid JSON"),
    (b"[1,2]", 400, "Invalid JSON"),
    (b"\xff\xfe", 415, "Unsupported documented encoding; supported encoding is UTF-8"),
    (b"{}", 400, "Missing required node: state"),
    (b'{"state": 5}', 400, "State node must be an object"),
    (b'{"state": {"desired": 5}}', 400, "Desired node must be an object"),
    (b'{"state": {"reported": [1]}}', 400, "Reported node must be an object"),
    (b'{"state": {"delta": {"a": 1}}}', 400, "State contains an invalid node"),
    (b'{"state": {"desired": {"a": [1, null]}}}', 400, "State contains an invalid node"),
    (b'{"state": {"desired": {}}, "version": "3"}', 400, "Invalid version"),
    (b'{"state": {"desired": {}}, "version": true}', 400, "Invalid version"),
    (b'{"state": {"desired": {}}, "clientToken": 5}', 400, "Invalid clientToken"),
    (('{"state": {"desired": {}}, "clientToken": "' + "x" * 65 + '"}').encode(), 400, "Invalid clientToken"),
    (b'{"state": {"desired": {"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}', 400,
     "JSON contains too many levels of nesting; maximum is 6"),
    (json.dumps({"state": {"desired": {"big": "x" * 8200}}}).encode(), 413,
     "The payload exceeds the maximum size allowed"),
])
def test_rejections(payload: bytes, code: int, message: str) -> None:
    with pytest.raises(ShadowError) as err:
        apply_update(None, parse_update(payload), T)
    assert (err.value.code, err.value.message) == (code, message)


def test_depth_six_is_allowed() -> None:
    update(None, {"state": {"desired": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}})


def test_size_limit_applies_to_the_resulting_document() -> None:
    r = update(None, {"state": {"desired": {"a": "x" * 5000}}})
    with pytest.raises(ShadowError) as err:
        update(r.shadow, {"state": {"reported": {"b": "y" * 4000}}, "clientToken": "t"})
    assert err.value.code == 413 and err.value.client_token == "t"


def test_version_on_missing_shadow_is_invalid() -> None:
    with pytest.raises(ShadowError) as err:
        update(None, {"state": {"desired": {"a": 1}}, "version": 1})
    assert (err.value.code, err.value.message) == (400, "Invalid version")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(first=json_values, second=json_values, raw=st.binary(max_size=64))
def test_fuzz_never_crashes(first: object, second: object, raw: bytes) -> None:
    shadow = None
    for payload in (json.dumps({"state": first}).encode(), json.dumps({"state": {"desired": second}}).encode(),
                    json.dumps(first).encode(), raw):
        try:
            result = apply_update(shadow, parse_update(payload), T)
        except ShadowError as err:
            assert err.code in (400, 409, 413, 415) and err.message
            continue
        shadow = result.shadow
        stored = shadow.state
        assert set(stored) <= {"desired", "reported"}
        json.dumps(full_document(shadow, T))  # always serialisable
