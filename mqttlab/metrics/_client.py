"""``lab.metrics``: the services' Prometheus endpoint (mosquitto's ``$SYS`` bridged, twins, recorder, rules)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..errors import ApiError

if TYPE_CHECKING:
    import pandas as pd


def _key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


class Metrics:
    """Read the lab's metrics: ``lab.metrics.scrape()``, or ``with lab.metrics.record(every=0.5) as rec:``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def scrape(self, prefix: str = "mqttlab_") -> dict[str, float]:
        """One scrape: ``{"mqttlab_broker_clients_connected": 3.0, 'mqttlab_twins_requests{outcome="accepted"}': ...}``."""
        try:
            response = httpx.get(self.url, timeout=5)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot scrape {self.url}: {exc}", status=0,
                           hint="is the lab running? `mqttlab status`") from None
        if response.status_code != 200:
            raise ApiError(f"{self.url} answered {response.status_code}", status=response.status_code)
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name.startswith(prefix) and not sample.name.endswith("_created"):
                    out[_key(sample.name, sample.labels)] = float(sample.value)
        return out

    def record(self, every: float = 1.0, prefix: str = "mqttlab_") -> MetricsRecording:
        """Sample in a background thread until the ``with`` block (or :meth:`MetricsRecording.stop`) ends."""
        return MetricsRecording(self, every, prefix)

    def __repr__(self) -> str:
        return f"<Metrics {self.url}>"


class MetricsRecording:
    """Samples taken every ``every`` seconds; :meth:`frame` is tidy (time, metric, value), :meth:`rates`
    turns counters into per-second rates."""

    def __init__(self, metrics: Metrics, every: float, prefix: str) -> None:
        self._metrics, self.every, self.prefix = metrics, every, prefix
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqttlab-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.samples.append((time.time(), self._metrics.scrape(self.prefix)))
            except ApiError:
                self.errors += 1  # a restarting service: the gap shows in the series
            if self._stop.wait(self.every):  # the sampling period, ended early by stop()
                return

    def stop(self) -> MetricsRecording:
        self._stop.set()
        self._thread.join(10)
        return self

    def __enter__(self) -> MetricsRecording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [(t, k, v) for t, values in self.samples for k, v in values.items()]
        df = pd.DataFrame(rows, columns=["time", "metric", "value"])
        df["time"] = pd.to_datetime(df["time"], unit="s", utc=True)
        return df

    def wide(self) -> pd.DataFrame:
        """One column per metric, indexed by time."""
        return self.frame().pivot_table(index="time", columns="metric", values="value")

    def rates(self, *metrics: str) -> pd.DataFrame:
        """Per-second rates of counters (tidy), e.g. ``rates("mqttlab_broker_publish_received_total")``.
        mosquitto publishes ``$SYS`` every second, so rates are smoothest with ``every >= 1``."""
        wide = self.wide()
        cols = [c for c in wide.columns if not metrics or c in metrics]
        seconds = wide.index.to_series().diff().dt.total_seconds()
        rate = wide[cols].diff().div(seconds, axis=0).clip(lower=0).dropna(how="all")
        return rate.reset_index().melt(id_vars="time", var_name="metric", value_name="per_second")
