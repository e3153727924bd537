"""Rule errors: SQL syntax (with position), runtime evaluation, and no match."""

from __future__ import annotations

import json
from typing import Any

from ..errors import MqttlabError


class RuleSqlError(MqttlabError):
    """The SQL does not parse. ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})",
                         hint="EMQX rule SQL: SELECT <fields> FROM \"topic/#\" [WHERE ...]; strings in single quotes")
        self.reason, self.line, self.column = message, line, column


class RuleRuntimeError(MqttlabError):
    """Evaluating the rule failed (e.g. a path into a payload that is not JSON).

    ``reason`` is EMQX's reason term (``"decode_json_failed"``, ``"badarg"``, or a map for
    ``bad_sql_function_argument``); ``stage`` where it happened (``select_and_transform_error``,
    ``match_conditions_error``, ``select_and_collect_error``, ``match_incase_error``).
    """

    def __init__(self, message: str, hint: str | None = None, *, reason: Any = None, stage: str | None = None) -> None:
        super().__init__(message, hint)
        self.reason = reason if reason is not None else message
        self.stage = stage

    def emqx_message(self) -> str:
        """The 400 body's message as EMQX writes it: ``{"<stage>": <reason>}`` as JSON text."""
        return json.dumps({self.stage or "select_and_transform_error": self.reason}, separators=(",", ":"))


class NoMatch(MqttlabError):
    """The event does not match the rule (topic/event not in FROM, or WHERE false): EMQX's 412."""

    def __init__(self, message: str = "SQL Not Match") -> None:
        super().__init__(message, hint="check FROM against the context's topic/event_type, and the WHERE clause")
