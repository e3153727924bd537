"""Rule errors: SQL syntax (with position), runtime evaluation, and no match."""

from __future__ import annotations

from ..errors import MqttlabError


class RuleSqlError(MqttlabError):
    """The SQL does not parse. ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})",
                         hint="EMQX rule SQL: SELECT <fields> FROM \"topic/#\" [WHERE ...]; strings in single quotes")
        self.reason, self.line, self.column = message, line, column


class RuleRuntimeError(MqttlabError):
    """Evaluating the rule failed (e.g. a path into a payload that is not JSON)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)


class NoMatch(MqttlabError):
    """The event does not match the rule (topic/event not in FROM, or WHERE false): EMQX's 412."""

    def __init__(self, message: str = "SQL Not Match") -> None:
        super().__init__(message, hint="check FROM against the context's topic/event_type, and the WHERE clause")
