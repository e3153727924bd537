"""Plotly rendering that survives papermill and nbconvert's HTML export."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_RENDERER = "plotly_mimetype+notebook_connected"


def setup_plotly(renderer: str | None = None) -> str:
    """Choose a renderer whose output nbconvert keeps in HTML.

    In a kernel plotly picks ``plotly_mimetype`` alone, which nbconvert drops from HTML. This adds
    an HTML rendering: ``notebook_connected`` (plotly.js from a CDN, small) by default, or the
    ``PLOTLY_RENDERER`` environment variable (``mqttlab report`` sets ``plotly_mimetype+notebook``,
    which inlines plotly.js so the report works offline).
    """
    import plotly.io as pio

    chosen = renderer or os.environ.get("PLOTLY_RENDERER") or DEFAULT_RENDERER
    pio.renderers.default = chosen
    return chosen


def _offline() -> bool:
    """True when the renderer inlines plotly.js (``notebook``, as ``mqttlab report`` uses)."""
    import plotly.io as pio

    return "notebook" in str(pio.renderers.default).split("+")


def _bundle(fig: Any) -> dict[str, Any]:
    import plotly.io as pio

    # offline, plotly.js was put into the page once (LiveChart.__init__); inlining it into every redraw
    # would send megabytes per update, and a CDN reference does not render without a network
    return {"application/vnd.plotly.v1+json": fig.to_plotly_json(),
            "text/html": pio.to_html(fig, include_plotlyjs=False if _offline() else "cdn", full_html=False)}


class LiveChart:
    """A chart redrawn in place; the saved notebook keeps only the final, exportable state."""

    def __init__(self, fig: Any, display_id: str | None = None) -> None:
        import uuid

        from IPython.display import display

        self.display_id = display_id or f"mqttlab-live-{uuid.uuid4().hex[:8]}"
        if _offline():
            import plotly.io as pio

            pio.renderers["notebook"].activate()  # plotly.js into the page before the first redraw uses it
        display(_bundle(fig), raw=True, display_id=self.display_id)

    def update(self, fig: Any) -> None:
        from IPython.display import update_display

        update_display(_bundle(fig), raw=True, display_id=self.display_id)
