"""``lab.history``: query recorded messages into pandas, chart them, export, import and replay them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ApiError, ConfigError
from . import _files
from ._times import to_ns

if TYPE_CHECKING:
    import pandas as pd

    from ..aio._conn import ConnectOptions
    from ._replay import Replay, ReplayReport


def _param(value: Any) -> str | None:
    """Times travel as epoch ns (computed here, so "-15m" means 15 minutes before this call)."""
    ns = to_ns(value)
    return None if ns is None else str(ns)


class History:
    """Client of the recorder's store (through the services' HTTP API, which owns it)."""

    def __init__(self, api_url: str, auth: tuple[str, str], broker: ConnectOptions | None = None,
                 timeout: float = 60.0) -> None:
        self._http = httpx.Client(base_url=api_url, auth=auth, timeout=timeout)
        self._broker = broker

    def close(self) -> None:
        self._http.close()

    def _arrow(self, path: str, params: dict[str, Any]) -> pa.Table:
        resp = self._http.get(path, params={k: v for k, v in params.items() if v is not None})
        if resp.status_code >= 400:
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
            raise ApiError(f"GET {path}: {resp.status_code} {body.get('message', resp.text[:200])}",
                           status=resp.status_code, code=body.get("code"), hint=body.get("hint"))
        return pq.read_table(io.BytesIO(resp.content))

    # ------------------------------------------------------------------ queries
    def table(self, *, topic: str | None = None, device: str | None = None, start: Any = None, stop: Any = None,
              limit: int | None = None, last: int | None = None) -> pa.Table:
        """Recorded messages as an Arrow table (exact payload bytes), oldest first; ``last=N``: the newest N."""
        return self._arrow("/api/history/messages", {
            "topic": topic, "device": device, "start": _param(start), "stop": _param(stop),
            "limit": last if last is not None else limit, "newest": "true" if last is not None else None})

    def messages(self, topic: str | None = None, device: str | None = None, start: Any = None, stop: Any = None,
                 limit: int | None = None, last: int | None = None) -> pd.DataFrame:
        """Recorded messages: time (UTC), topic, device, payload (bytes), text (when UTF-8), qos, retain, props, seq.

        ``topic`` may be an MQTT filter (``devices/+/telemetry``); times are datetimes, pandas
        Timestamps, ISO text, ``"now"`` or relative (``"-15m"``).
        """
        import pandas as pd

        df = self.table(topic=topic, device=device, start=start, stop=stop, limit=limit, last=last).to_pandas()
        df.insert(0, "time", pd.to_datetime(df["ts"], unit="ns", utc=True))
        df["text"] = [_decode(p) for p in df["payload"]]
        return df.drop(columns=["client_id"])

    def series(self, field: str, topic: str | None = None, device: str | None = None, start: Any = None,
               stop: Any = None, every: str | float | None = None, agg: str = "mean") -> pd.DataFrame:
        """A numeric JSON field over time, tidy (time, device, value[, n]) and ready for plotly.

        Fields are flattened with dots (``gps.lat``); ``every="10s"`` buckets them with ``agg``
        (mean, min, max, sum, count, median, first, last).
        """
        import pandas as pd

        df = self._arrow("/api/history/series", {"field": field, "topic": topic, "device": device,
                                                 "start": _param(start), "stop": _param(stop),
                                                 "every": str(every) if every is not None else None, "agg": agg}).to_pandas()
        df.insert(0, "time", pd.to_datetime(df["ts"], unit="ns", utc=True))
        return df.drop(columns=["ts"])

    def topics(self) -> pd.DataFrame:
        """The recorded topic tree: topic, messages, first and last seen (UTC), device."""
        import pandas as pd

        df = self._arrow("/api/history/topics", {}).to_pandas()
        for col in ("first_seen", "last_seen"):
            df[col] = pd.to_datetime(df[col], unit="ns", utc=True)
        return df

    def stats(self) -> dict[str, Any]:
        """Store size and the recorder's counters (received, written, pending, stamped gaps)."""
        result: dict[str, Any] = self._http.get("/api/history/stats").raise_for_status().json()
        return result

    def recording(self, on: bool) -> None:
        """Pause (``False``) or resume (``True``) the recorder; messages published while paused are not kept."""
        self._http.put("/api/history/recording", json={"recording": on}).raise_for_status()

    def paused(self) -> Any:
        """``with lab.history.paused(): ...``: recording off for the block (benchmarks measure the broker alone)."""
        import contextlib

        @contextlib.contextmanager
        def pause() -> Any:
            self.recording(False)
            try:
                yield
            finally:
                self.recording(True)

        return pause()

    def wait_for(self, count: int, timeout: float = 30.0, **filters: Any) -> pa.Table:
        """Wait until ``count`` messages matching ``filters`` are stored; the error says how many were."""
        from .._wait import wait_until

        last: dict[str, Any] = {"n": 0, "table": None}

        def enough() -> bool:
            table = self.table(**filters)
            last["n"], last["table"] = table.num_rows, table
            return bool(table.num_rows >= count)  # an empty table is falsy: compare explicitly

        wait_until(enough, timeout=timeout, what=f"{count} recorded messages matching {filters}",
                   seen=lambda: f"{last['n']} recorded", interval=0.02, max_interval=0.25)
        result: pa.Table = last["table"]
        return result

    # ------------------------------------------------------------------ files
    def export(self, path: str | Path, format: str | None = None, *, overwrite: bool = False,
               base: str | Path | None = None, **filters: Any) -> Path:
        """Write recorded messages (filters as :meth:`messages`) to .jsonl, .csv or .parquet; returns the path.

        Never overwrites unless ``overwrite=True``; with ``base`` the file must land inside it.
        """
        target = _files.safe_output_path(path, overwrite=overwrite, base=base)
        fmt = _files.detect_format(target, format)
        _files.write(self.table(**filters), target, fmt)
        return target

    def import_file(self, path: str | Path, format: str | None = None) -> int:
        """Append an export's messages to the store (they get new sequence numbers); returns the count."""
        table = _files.read(path, format)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        resp = self._http.post("/api/history/import", content=sink.getvalue(),
                               headers={"content-type": "application/vnd.apache.parquet"})
        if resp.status_code >= 400:
            raise ApiError(f"import failed: {resp.text[:200]}", status=resp.status_code)
        count: int = resp.json()["imported"]
        return count

    # ------------------------------------------------------------------ replay
    def replay(self, topic: str | None = None, start: Any = None, stop: Any = None, *, device: str | None = None,
               speed: float | str = 1.0, to_prefix: str | None = None, qos: int | None = None,
               source: str | Path | pa.Table | None = None, background: bool = False,
               progress: bool = True) -> ReplayReport | Replay:
        """Republish recorded messages in recorded order with inter-arrival times divided by ``speed``
        (``"max"``: as fast as the broker takes them). Payload bytes, QoS, retain and MQTT 5 properties
        are kept; ``to_prefix="replay/"`` puts them under a prefix so live and replayed traffic differ.

        ``source`` replays an export file (or an Arrow table) instead of the store. Returns the report,
        or with ``background=True`` a :class:`Replay` to watch and ``cancel()``.
        """
        from ._replay import Replay

        if self._broker is None:
            raise ConfigError("this History client has no broker to replay onto", hint="use lab.history.replay")
        if isinstance(source, pa.Table):
            table = source
        elif source is not None:
            table = _files.read(source)
        else:
            table = self.table(topic=topic, device=device, start=start, stop=stop)
        run = Replay(table, self._broker, speed=speed, to_prefix=to_prefix, qos=qos)
        return run if background else run.wait(progress=progress)

    def replay_controls(self, **kwargs: Any) -> Any:
        """An ipywidgets panel: topic, time range, speed (or max), prefix; Replay / Cancel; progress."""
        from ._widget import replay_controls

        return replay_controls(self, **kwargs)

    # ------------------------------------------------------------------ charts
    def plot_series(self, field: str, **kwargs: Any) -> Any:
        """Per-device time series of a field (plotly figure)."""
        from ._charts import series_figure

        return series_figure(self.series(field, **kwargs), field)

    def heatmap(self, field: str, every: str | float = "10s", **kwargs: Any) -> Any:
        """Fleet heatmap: devices by time bucket, coloured by the field's mean."""
        from ._charts import heatmap_figure

        return heatmap_figure(self.series(field, every=every, **kwargs), field)

    def topic_rates(self, every: str | float = "1s", **filters: Any) -> Any:
        """Messages per second per topic (plotly figure)."""
        from ._charts import rate_figure

        return rate_figure(self.messages(**filters), every)


def _decode(payload: bytes) -> str | None:
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        return None
