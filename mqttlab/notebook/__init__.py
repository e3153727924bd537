"""Jupyter-side helpers (plotly setup, live charts). Imported by notebooks only, never by the services."""

from ._plotting import LiveChart, setup_plotly

__all__ = ["LiveChart", "setup_plotly"]
