"""Compile a rule once, run it on many events; the ``rule_test`` contract of EMQX's REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _ast as a
from . import _funcs_codec  # noqa: F401  (registers the codec, time and bit functions)
from ._errors import NoMatch, RuleRuntimeError, RuleSqlError
from ._eval import Evaluator, source_matches
from ._events import EVENT_TYPES, defaults
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


def rule_test(sql: str, context: dict[str, Any], rule_id: str = "rule_test") -> Any:
    """EMQX's dry run: fill the context's defaults, gate on FROM, evaluate. Raises NoMatch for 412."""
    rule = compile_sql(sql)
    event_type = context.get("event_type")
    if event_type not in EVENT_TYPES:
        raise RuleRuntimeError(f"unknown event type {event_type!r}" if event_type else "event_type is required",
                               hint=f"one of {', '.join(EVENT_TYPES)}")
    columns = {**defaults(event_type), **context}
    columns["metadata"] = {**columns.get("metadata", {}), "rule_id": rule_id}
    topic = columns.get("topic") if event_type == "message_publish" else None
    if not rule.matches(event_type, topic if isinstance(topic, str) else None):
        raise NoMatch()
    return rule.run(columns)
