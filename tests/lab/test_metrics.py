"""lab.metrics: scrapes of the real services endpoint, recordings, and a typed error when nothing answers."""

from __future__ import annotations

import pytest

from mqttlab import ApiError, Lab
from mqttlab._wait import wait_until
from mqttlab.metrics import Metrics

pytestmark = pytest.mark.lab


def test_scrape_has_broker_and_service_metrics(lab: Lab) -> None:
    values = wait_until(lambda: (v := lab.metrics.scrape()).get("mqttlab_broker_clients_connected") and v,
                        timeout=10, what="$SYS figures bridged into /metrics")
    assert values["mqttlab_services_up"] == 1.0
    assert values["mqttlab_broker_clients_connected"] >= 1
    assert 'mqttlab_recorder_messages{stage="written"}' in values


def test_recording_rates(lab: Lab) -> None:
    client = lab.mqtt_client()
    with lab.metrics.record(every=0.2) as rec:
        wait_until(lambda: len(rec.samples) >= 2, timeout=10, what="two samples")
        for i in range(50):
            client.publish("metrics/test", str(i), qos=1).wait_for_publish(5)
        wait_until(lambda: len(rec.samples) >= 4, timeout=10, what="four samples")
    frame = rec.frame()
    assert {"time", "metric", "value"} <= set(frame.columns) and len(rec.samples) >= 4
    rates = rec.rates('mqttlab_recorder_messages{stage="written"}')
    assert (rates["per_second"] >= 0).all()
    assert rec.wide().index.is_monotonic_increasing


def test_unreachable_endpoint_is_a_typed_error() -> None:
    with pytest.raises(ApiError, match="cannot scrape") as info:
        Metrics("http://127.0.0.1:1/metrics").scrape()
    assert "mqttlab status" in (info.value.hint or "")
