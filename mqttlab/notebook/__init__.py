"""Jupyter-side helpers (plotly setup, live charts). Imported by notebooks only, never by the services."""

from ._plotting import live_chart, setup_plotly

__all__ = ["live_chart", "setup_plotly"]
