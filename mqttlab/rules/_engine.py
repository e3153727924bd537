"""Compile a rule once, run it on many events; the ``rule_test`` contract of EMQX's REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _ast as a
from . import _funcs_codec  # noqa: F401  (registers the codec, time and bit functions)
from ._errors import NoMatch, RuleRuntimeError, RuleSqlError
from ._eval import Evaluator, source_matches
from ._events import CONTEXT_FIELDS, EVENT_TYPES, defaults
from ._funcs import F
from ._parser import parse
from ._values import to_jsonable

_EVALUATOR = Evaluator(F)


@dataclass(frozen=True)
class CompiledRule:
    """A parsed and checked statement. ``run`` returns a document (SELECT) or a list (FOREACH)."""

    statement: a.Statement

    @property
    def sources(self) -> tuple[str, ...]:
        return self.statement.sources

    @property
    def topic_filters(self) -> list[str]:
        return [s for s in self.sources if not s.startswith("$")]

    @property
    def events(self) -> list[str]:
        return [s[len("$events/"):] for s in self.sources if s.startswith("$events/")]

    def matches(self, event_type: str, topic: str | None) -> bool:
        return source_matches(self.statement, event_type, topic)

    def run(self, columns: dict[str, Any]) -> Any:
        """Evaluate on an event's columns; raises NoMatch (WHERE false) or RuleRuntimeError."""
        try:
            if self.statement.kind == "select":
                return to_jsonable(_EVALUATOR.select(self.statement, columns))
            return to_jsonable(_EVALUATOR.foreach(self.statement, columns))
        except (NoMatch, RuleRuntimeError):
            raise
        except RecursionError:
            raise RuleRuntimeError("the expression nests too deeply") from None


def compile_sql(sql: str) -> CompiledRule:
    """Parse and check SQL; raises :class:`RuleSqlError` with line and column."""
    stmt = parse(sql)
    _EVALUATOR.check(stmt)
    for source in stmt.sources:
        if source == "$events/message_publish":
            raise RuleSqlError("$events/message_publish is not a valid source: use a topic filter", 1, 1)
        if source.startswith("$events/") and source[len("$events/"):] not in EVENT_TYPES:
            raise RuleSqlError(f"unknown event {source}", 1, 1)
    return CompiledRule(stmt)


def rule_test(sql: str, context: dict[str, Any], rule_id: str | None = None) -> Any:
    """EMQX's dry run: validate the context, fill defaults, gate on FROM, evaluate. NoMatch means 412."""
    import secrets

    rule = compile_sql(sql)
    event_type = context.get("event_type")
    if event_type not in EVENT_TYPES:
        raise RuleRuntimeError(f"unknown event type {event_type!r}" if event_type else "event_type is required",
                               hint=f"one of {', '.join(EVENT_TYPES)}", reason="unknown event type")
    allowed = CONTEXT_FIELDS.get(event_type)
    if allowed is not None:
        unknown = sorted(set(context) - allowed)
        if unknown:
            raise RuleRuntimeError(f"Bad Arguments: unknown_fields {unknown} for {event_type}",
                                   hint=f"allowed: {', '.join(sorted(allowed))}", reason="unknown_fields")
    if "payload" in context and not isinstance(context["payload"], str):
        raise RuleRuntimeError("Bad Arguments: payload must be a string (JSON-encode it)", reason="bad_payload")
    if "qos" in context and context["qos"] not in (0, 1, 2):
        raise RuleRuntimeError("Bad Arguments: qos must be 0, 1 or 2", reason="bad_qos")
    columns = {**defaults(event_type), **context}
    columns["metadata"] = {"rule_id": rule_id or f"sql_tester:{secrets.token_hex(8)}"}
    topic = context.get("topic", "") if event_type == "message_publish" else None
    if not rule.matches(event_type, topic if isinstance(topic, str) else ""):
        raise NoMatch()
    return rule.run(columns)
