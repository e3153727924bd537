"""Rules: an EMQX 5 compatible rule SQL engine, its live runtime on the local stack, and one client for both."""

from ._client import RuleApiError, RuleNoMatch, Rules, RuleTestError, check_case, load_golden
from ._engine import CompiledRule, compile_sql, rule_test
from ._errors import NoMatch, RuleRuntimeError, RuleSqlError

__all__ = ["CompiledRule", "NoMatch", "RuleApiError", "RuleNoMatch", "RuleRuntimeError", "RuleSqlError",
           "RuleTestError", "Rules", "check_case", "compile_sql", "load_golden", "rule_test"]
