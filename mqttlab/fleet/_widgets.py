"""A small ipywidgets panel for a running fleet: live counters, a rate slider, stop."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import Fleet


def fleet_panel(fleet: Fleet, refresh_s: float = 1.0) -> Any:
    import ipywidgets as w

    counters = w.HTML()
    rate = w.FloatLogSlider(value=fleet.engine.rate.per_second, base=10, min=-2, max=3, step=0.1,
                            description="msg/s/device", continuous_update=False, readout_format=".2f")
    stop_btn = w.Button(description="Stop fleet", button_style="danger", icon="stop")
    ticker = threading.Event()

    def render() -> None:
        s = fleet.status()
        cells = "".join(f"<td style='padding:0 8px'><b>{k}</b><br>{s[k]}</td>"
                        for k in ("devices", "connected", "sent", "acked", "send_rate", "reconnects", "commands",
                                  "deltas", "running"))
        counters.value = f"<table><tr>{cells}</tr></table>"

    def loop() -> None:
        while not ticker.wait(refresh_s):
            render()
            if not fleet.running:
                break

    def on_rate(change: dict[str, Any]) -> None:
        fleet.set_rate(float(change["new"]))

    def on_stop(_: Any) -> None:
        stop_btn.disabled = True
        fleet.stop()
        ticker.set()
        render()

    rate.observe(on_rate, names="value")
    stop_btn.on_click(on_stop)
    render()
    threading.Thread(target=loop, daemon=True, name="fleet-panel").start()
    return w.VBox([counters, w.HBox([rate, stop_btn])])
