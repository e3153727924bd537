"""Broker and service metrics of a lab: scrape the Prometheus endpoint now, or sample it over time."""

from ._client import Metrics, MetricsRecording

__all__ = ["Metrics", "MetricsRecording"]
