"""An ipywidgets rule editor: SQL and a test context, a Test button (rule_test) and Deploy."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import Rules


def rule_editor(rules: Rules, sql: str = 'SELECT payload.temp as temp FROM "devices/+/telemetry" WHERE payload.temp > 30',
                context: dict[str, Any] | None = None, rule_id: str | None = None) -> Any:
    import ipywidgets as w

    from ._client import RuleApiError, RuleNoMatch

    sql_box = w.Textarea(value=sql, layout=w.Layout(width="100%", height="90px"), description="SQL")
    ctx = context or {"event_type": "message_publish", "topic": "devices/d1/telemetry", "payload": '{"temp": 31}'}
    ctx_box = w.Textarea(value=json.dumps(ctx, indent=2), layout=w.Layout(width="100%", height="110px"),
                         description="context")
    id_box = w.Text(value=rule_id or "", description="rule id", placeholder="(generated)")
    result = w.HTML()
    test_btn = w.Button(description="Test", button_style="info", icon="play")
    deploy_btn = w.Button(description="Deploy", button_style="success", icon="upload")

    def show(kind: str, body: Any) -> None:
        color = {"ok": "#060", "nomatch": "#a60", "error": "#b00"}[kind]
        text = json.dumps(body, indent=2) if not isinstance(body, str) else body
        result.value = f"<pre style='color:{color}'>{text}</pre>"

    def on_test(_: Any) -> None:
        try:
            context_doc = json.loads(ctx_box.value or "{}")
        except ValueError as exc:
            show("error", f"context is not JSON: {exc}")
            return
        event_type = context_doc.pop("event_type", "message_publish")
        try:
            show("ok", rules.test(sql_box.value, event_type, **context_doc))
        except RuleNoMatch:
            show("nomatch", "412 SQL Not Match: the context's topic/event is not in FROM, or WHERE is false")
        except RuleApiError as exc:
            show("error", exc.message)

    def on_deploy(_: Any) -> None:
        try:
            record = rules.create(sql_box.value, [{"function": "console"}], id=id_box.value or None)
            id_box.value = record["id"]
            show("ok", f"deployed as {record['id']} (console action; add actions with lab.rules.update)")
        except RuleApiError as exc:
            show("error", exc.message)

    test_btn.on_click(on_test)
    deploy_btn.on_click(on_deploy)
    return w.VBox([sql_box, ctx_box, w.HBox([id_box, test_btn, deploy_btn]), result])
