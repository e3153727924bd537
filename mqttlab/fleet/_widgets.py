"""A small ipywidgets panel for a running fleet: live counters, a rate slider, stop."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import Fleet, FleetClient


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


def fleet_launcher(client: FleetClient, count: int = 10, profile: str = "thermostat", rate: float = 1.0,
                   qos: int = 1, prefix: str = "ui") -> Any:
    """Choose devices, profile, rate and QoS, then Start; the running fleet's panel (counters, live rate
    slider, Stop) appears below. ``launcher.fleet`` is the last fleet started."""
    import ipywidgets as w

    from ..errors import MqttlabError
    from ._profiles import PROFILES

    count_box = w.IntSlider(value=count, min=1, max=1000, description="devices", continuous_update=False)
    profile_box = w.Dropdown(options=sorted(PROFILES), value=profile, description="profile")
    rate_box = w.FloatLogSlider(value=rate, base=10, min=-2, max=3, step=0.1, description="msg/s/device",
                                readout_format=".2f")
    qos_box = w.ToggleButtons(options=[0, 1, 2], value=qos, description="QoS")
    start_btn = w.Button(description="Start fleet", button_style="success", icon="play")
    message = w.HTML()
    below = w.VBox()
    launcher = w.VBox([w.HBox([count_box, profile_box]), w.HBox([rate_box, qos_box]), w.HBox([start_btn, message]),
                       below])
    launcher.fleet = None

    def on_start(_: Any) -> None:
        if launcher.fleet is not None and launcher.fleet.running:
            message.value = "a fleet from this panel is still running: stop it first"
            return
        try:
            launcher.fleet = client.start(int(count_box.value), profile_box.value, rate=float(rate_box.value),
                                          qos=int(qos_box.value), prefix=prefix)
        except MqttlabError as exc:
            message.value = f"<span style='color:#b00'>{exc.message}</span>" + (f"<br>{exc.hint}" if exc.hint else "")
            return
        message.value = ""
        below.children = [fleet_panel(launcher.fleet)]

    start_btn.on_click(on_start)
    launcher.start_button, launcher.message = start_btn, message
    return launcher
