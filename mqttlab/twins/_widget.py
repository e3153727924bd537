"""An ipywidgets twin editor: desired (editable), reported and delta side by side."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import Twins


def twin_editor(twins: Twins, thing: str, name: str | None = None) -> Any:
    """Build the editor widget; Apply sends the edited desired section (fields set to null are deleted)."""
    import ipywidgets as w

    layout = w.Layout(width="33%", height="220px")
    desired = w.Textarea(description="", layout=layout)
    reported = w.Textarea(disabled=True, layout=layout)
    delta = w.Textarea(disabled=True, layout=layout)
    header = w.HTML()
    status = w.HTML()
    apply_btn = w.Button(description="Apply desired", button_style="primary", icon="upload")
    refresh_btn = w.Button(description="Refresh", icon="refresh")
    state: dict[str, Any] = {"version": None}

    def show(doc: dict[str, Any] | None) -> None:
        st = doc["state"] if doc else {}
        desired.value = json.dumps(st.get("desired", {}), indent=2)
        reported.value = json.dumps(st.get("reported", {}), indent=2)
        delta.value = json.dumps(st.get("delta", {}), indent=2)
        state["version"] = doc["version"] if doc else None
        when = datetime.fromtimestamp(doc["timestamp"], timezone.utc).isoformat() if doc else "-"
        header.value = (f"<b>{thing}</b>{' / ' + name if name else ''} &nbsp; version <b>{state['version']}</b>"
                        f" &nbsp; updated {when}")

    def refresh(_: Any = None) -> None:
        from ._client import TwinError

        try:
            show(twins.get(thing, name))
            status.value = ""
        except TwinError as exc:
            show(None)
            status.value = f"<i>{exc.message}</i>"

    def apply(_: Any) -> None:
        from ._client import TwinError

        try:
            edited = json.loads(desired.value or "{}")
        except ValueError as exc:
            status.value = f"<span style='color:#b00'>desired is not valid JSON: {exc}</span>"
            return
        try:
            doc = twins.update(thing, desired=edited, name=name, version=state["version"])
        except TwinError as exc:
            status.value = f"<span style='color:#b00'>{exc.message}</span>"
            return
        show(twins.get(thing, name))
        status.value = f"applied as version {doc['version']}"

    apply_btn.on_click(apply)
    refresh_btn.on_click(refresh)
    refresh()
    labels = w.HBox([w.HTML("<b>desired</b>", layout=w.Layout(width="33%")),
                     w.HTML("<b>reported</b>", layout=w.Layout(width="33%")),
                     w.HTML("<b>delta</b>", layout=w.Layout(width="33%"))])
    return w.VBox([header, labels, w.HBox([desired, reported, delta]), w.HBox([apply_btn, refresh_btn]), status])
