"""Plotly figures for history DataFrames (notebook side only)."""

from __future__ import annotations

from typing import Any


def series_figure(df: Any, field: str) -> Any:
    import plotly.express as px

    fig = px.line(df, x="time", y="value", color="device" if df["device"].notna().any() else None,
                  title=f"{field} by device")
    fig.update_layout(yaxis_title=field)
    return fig


def heatmap_figure(df: Any, field: str) -> Any:
    import plotly.graph_objects as go

    pivot = df.pivot_table(index="device", columns="time", values="value", aggfunc="mean")
    fig = go.Figure(go.Heatmap(z=pivot.values, x=list(pivot.columns), y=list(pivot.index), colorbar={"title": field}))
    fig.update_layout(title=f"{field}: fleet heatmap", xaxis_title="time", yaxis_title="device")
    return fig


def rate_figure(messages: Any, every: str | float) -> Any:
    import pandas as pd
    import plotly.express as px

    from ._times import to_interval_s

    freq = f"{int(to_interval_s(every) * 1000)}ms"
    counts = (messages.set_index("time").groupby("topic").resample(freq).size().rename("messages").reset_index())
    counts["rate"] = counts["messages"] / (pd.Timedelta(freq).total_seconds())
    return px.line(counts, x="time", y="rate", color="topic", title="messages per second by topic")
