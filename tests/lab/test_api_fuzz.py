"""Fuzz the services' HTTP API from its own OpenAPI schema (schemathesis): no 5xx, no crash, no lost state."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.errors import SerializationNotPossible

from mqttlab import Lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fuzz_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab of this module's own: fuzzing writes junk twins and rules nobody else should see."""
    with Lab.local(tmp_path_factory.mktemp("fuzz")) as running:
        running.twins.update("fuzz-keeper", desired={"mode": "eco"})
        yield running


def _check(case: schemathesis.Case, lab: Lab) -> None:
    response = case.call(base_url=lab.endpoints.api, auth=lab.api_auth, timeout=10)
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if 400 <= response.status_code < 500 and response.content:
        body = response.json()
        # AWS- and EMQX-style {"code", "message"}, or FastAPI's validation {"detail"}
        assert isinstance(body, dict) and ({"code", "message"} <= set(body) or "detail" in body), (where, body)


def test_no_input_makes_a_server_error(fuzz_lab: Lab) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_lab.endpoints.api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    fuzzed, binary_only = 0, []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def fuzz(case: schemathesis.Case) -> None:
            _check(case, fuzz_lab)

        try:
            fuzz()
        except SerializationNotPossible:  # the Parquet import body: covered by the history tests
            binary_only.append(operation.label)
            continue
        fuzzed += 1
    assert fuzzed >= 15 and len(binary_only) <= 2, (fuzzed, binary_only)


def test_after_fuzzing_the_service_is_up_and_state_is_intact(fuzz_lab: Lab) -> None:
    assert httpx.get(f"{fuzz_lab.endpoints.api}/health", timeout=5).status_code == 200
    doc = fuzz_lab.twins.get("fuzz-keeper")
    assert doc["state"]["desired"]["mode"] == "eco"
    assert fuzz_lab.status()["components"]["services"]["healthy"] is True
