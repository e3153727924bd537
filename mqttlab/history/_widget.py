"""Replay controls: choose what to replay and how fast, start, watch progress, cancel."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import MqttlabError

if TYPE_CHECKING:
    from ._client import History


def replay_controls(history: History, topic: str = "devices/#", start: str = "-15m", stop: str = "now",
                    speed: float = 20.0, to_prefix: str = "replay/") -> Any:
    """An ipywidgets panel over :meth:`History.replay` (background mode); ``panel.last`` holds the last Replay."""
    import ipywidgets as w

    topic_box = w.Text(value=topic, description="topic")
    start_box = w.Text(value=start, description="start")
    stop_box = w.Text(value=stop, description="stop")
    speed_slider = w.FloatLogSlider(value=speed, base=10, min=-1, max=3, step=0.1, description="speed x")
    max_box = w.Checkbox(value=False, description="as fast as possible")
    prefix_box = w.Text(value=to_prefix, description="to prefix", placeholder="(same topics)")
    go_btn = w.Button(description="Replay", button_style="success", icon="play")
    cancel_btn = w.Button(description="Cancel", button_style="warning", icon="stop", disabled=True)
    bar = w.IntProgress(value=0, min=0, max=1, description="sent")
    status = w.HTML()
    panel = w.VBox([w.HBox([topic_box, start_box, stop_box]), w.HBox([speed_slider, max_box, prefix_box]),
                    w.HBox([go_btn, cancel_btn, bar]), status])
    panel.last = None

    def follow(run: Any) -> None:
        tick = threading.Event()
        while run.running:
            bar.value, _ = run.progress
            tick.wait(0.2)  # UI refresh cadence
        report = run.wait()
        bar.value = report.sent
        go_btn.disabled, cancel_btn.disabled = False, True
        verb = "cancelled after" if report.cancelled else "replayed"
        status.value = (f"<b>{verb} {report.sent} of {report.total}</b> in {report.duration_s:.2f} s "
                        f"({report.rate_msg_s:,.0f} msg/s)")

    def on_go(_: Any) -> None:
        try:
            run: Any = history.replay(topic_box.value or None, start_box.value or None, stop_box.value or None,
                                 speed="max" if max_box.value else float(speed_slider.value),
                                 to_prefix=prefix_box.value or None, background=True)
        except MqttlabError as exc:
            status.value = f"<span style='color:#b00'>{exc.message}</span>" + (f"<br>{exc.hint}" if exc.hint else "")
            return
        panel.last = run
        bar.max = max(1, run.progress[1])
        bar.value = 0
        go_btn.disabled, cancel_btn.disabled = True, False
        status.value = f"replaying {run.progress[1]} messages..."
        threading.Thread(target=follow, args=(run,), name="mqttlab-replay-ui", daemon=True).start()

    def on_cancel(_: Any) -> None:
        if panel.last is not None:
            panel.last.cancel()

    go_btn.on_click(on_go)
    cancel_btn.on_click(on_cancel)
    panel.go_button, panel.cancel_button, panel.status = go_btn, cancel_btn, status
    return panel
