"""Evaluate a parsed rule against an event's columns: SELECT/FOREACH, WHERE, paths, AS targets."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from . import _ast as a
from ._errors import NoMatch, RuleRuntimeError, RuleSqlError
from ._topic import topic_matches
from ._values import UNDEFINED, compare, exact_equal, is_number, to_number, to_text, try_json

Functions = dict[str, Callable[..., Any]]
MAX_LIST = 1_000_000  # a range literal or repeat larger than this is refused rather than built


class Scope:
    """Variables (aliases, FOREACH bindings) over the event's columns."""

    def __init__(self, columns: dict[str, Any], local: dict[str, Any] | None = None,
                 cache: dict[int, Any] | None = None) -> None:
        self.columns = columns
        self.local = local or {}
        self.cache = cache if cache is not None else {}  # decoded JSON by id of the raw string

    def lookup(self, name: str) -> Any:
        if name in self.local:
            return self.local[name]
        if name in self.columns:
            return self.columns[name]
        return UNDEFINED

    def child(self, **extra: Any) -> Scope:
        return Scope(self.columns, {**self.local, **extra}, self.cache)

    def decoded(self, raw: str | bytes) -> Any:
        """JSON of a string, decoded once per event however many paths read it."""
        key = id(raw)
        hit = self.cache.get(key)
        if hit is None or hit[0] is not raw:
            hit = (raw, try_json(raw))
            self.cache[key] = hit
        return hit[1]


def _descend(value: Any, seg: a.Segment, evaluate: Callable[[a.Node], Any], root: str, scope: Scope) -> Any:
    if isinstance(value, (str, bytes)) and not isinstance(seg, a.Range):
        decoded = scope.decoded(value)
        if decoded is UNDEFINED:
            if root == "payload":
                raise RuleRuntimeError("decode_json_failed: the payload is not JSON", reason="decode_json_failed",
                                       hint="check the payload, or guard with is_map(json_decode(payload))")
            return UNDEFINED
        value = decoded
    if isinstance(seg, a.Key):
        return value.get(seg.name, UNDEFINED) if isinstance(value, dict) else UNDEFINED
    if isinstance(seg, a.Index):
        idx = evaluate(seg.expr)
        n = to_number(idx)
        if not isinstance(value, list) or n is None or not float(n).is_integer():
            if isinstance(value, dict) and isinstance(idx, str):
                return value.get(idx, UNDEFINED)
            return UNDEFINED
        n = int(n)
        if n > 0:
            return value[n - 1] if n <= len(value) else UNDEFINED
        if n < 0:
            return value[n] if -n <= len(value) else UNDEFINED
        return UNDEFINED
    if isinstance(value, (str, bytes)):
        value = try_json(value)
    if not isinstance(value, list):
        raise RuleRuntimeError("{range_get, non_list_data}: a range needs a list", hint="x[2..5] works on arrays",
                               reason={"range_get": "non_list_data"})
    lo, hi = to_number(evaluate(seg.lo)), to_number(evaluate(seg.hi))
    if lo is None or hi is None:
        raise RuleRuntimeError("range bounds must be integers")
    lo_i, hi_i = int(lo), int(hi)
    if lo_i < 0:
        lo_i = len(value) + lo_i + 1
    if hi_i < 0:
        hi_i = len(value) + hi_i + 1
    return value[max(lo_i, 1) - 1: hi_i]


class Evaluator:
    """Evaluates expressions of one statement with a function library."""

    def __init__(self, functions: Functions) -> None:
        self.functions = functions

    def check(self, stmt: a.Statement) -> None:
        """Reject calls to unknown functions at compile time (EMQX does too)."""

        def walk(node: Any) -> None:
            if isinstance(node, a.Call) and node.name not in self.functions:
                raise RuleSqlError(f"undefined function {node.name}", node.line, node.col)
            if dataclasses.is_dataclass(node) and not isinstance(node, type):
                for f in dataclasses.fields(node):
                    walk(getattr(node, f.name))
            elif isinstance(node, tuple):
                for item in node:
                    walk(item)

        for part in (stmt.fields, stmt.where, stmt.bindings, stmt.incase):
            walk(part)

    # ---------------------------------------------------------------- expressions
    def eval(self, node: a.Node, scope: Scope) -> Any:
        if isinstance(node, a.Literal):
            return node.value
        if isinstance(node, a.Path):
            value = scope.lookup(node.root)
            for seg in node.segments:
                if value is UNDEFINED:
                    return UNDEFINED
                value = _descend(value, seg, lambda n: self.eval(n, scope), node.root, scope)
            return value
        if isinstance(node, a.Apply):
            value = self.eval(node.base, scope)
            for seg in node.segments:
                if value is UNDEFINED:
                    return UNDEFINED
                value = _descend(value, seg, lambda n: self.eval(n, scope), "", scope)
            return value
        if isinstance(node, a.Binary):
            return self.binary(node, scope)
        if isinstance(node, a.Unary):
            v = self.eval(node.operand, scope)
            if node.op == "not":
                return v is False  # NOT of anything but a boolean false is false, as in EMQX
            if not is_number(v):
                raise RuleRuntimeError(f"badarith: cannot negate {v!r}", reason="badarith")
            return -v
        if isinstance(node, a.Call):
            args = [self.eval(arg, scope) for arg in node.args]
            fn = self.functions[node.name]
            try:
                return fn(*args)
            except RuleRuntimeError:
                raise
            except (TypeError, ValueError, ArithmeticError, KeyError, IndexError, AttributeError, OverflowError) as exc:
                reason = {"reason": "bad_sql_function_argument", "function_name": node.name,
                          "arguments": [to_text(x) if x is UNDEFINED else x for x in args]}
                raise RuleRuntimeError(f"{node.name}({', '.join(map(repr, args))[:200]}) failed: {exc}",
                                       hint=f"check the arguments of {node.name}()", reason=reason) from None
        if isinstance(node, a.ListLit):
            return [self.eval(item, scope) for item in node.items]
        if isinstance(node, a.RangeLit):
            lo, hi = to_number(self.eval(node.lo, scope)), to_number(self.eval(node.hi, scope))
            if lo is None or hi is None:
                raise RuleRuntimeError("range bounds must be integers")
            if hi - lo > MAX_LIST:
                raise RuleRuntimeError(f"range [{lo}..{hi}] is too large")
            return list(range(int(lo), int(hi) + 1))
        if isinstance(node, a.Case):
            subject = self.eval(node.subject, scope) if node.subject is not None else None
            for cond, result in node.whens:
                hit = self.eval(cond, scope)
                if (node.subject is None and hit is True) or (node.subject is not None and exact_equal(subject, hit)):
                    return self.eval(result, scope)
            return self.eval(node.default, scope) if node.default is not None else UNDEFINED
        raise RuleRuntimeError(f"cannot evaluate {type(node).__name__}")

    def binary(self, node: a.Binary, scope: Scope) -> Any:
        op = node.op
        if op in ("and", "or"):
            left = self.eval(node.left, scope)
            if not isinstance(left, bool):
                raise RuleRuntimeError(f"{op.upper()} needs booleans, got {left!r}")
            if op == "and" and not left:
                return False
            if op == "or" and left:
                return True
            right = self.eval(node.right, scope)
            if not isinstance(right, bool):
                raise RuleRuntimeError(f"{op.upper()} needs booleans, got {right!r}")
            return right
        left, right = self.eval(node.left, scope), self.eval(node.right, scope)
        if op == "in":
            return isinstance(right, list) and any(exact_equal(left, item) for item in right)
        if op == "=~":
            if left is UNDEFINED or right is UNDEFINED or not isinstance(left, str) or not isinstance(right, str):
                return False
            return topic_matches(left, right)
        if op in ("=", "!=", ">", "<", ">=", "<="):
            try:
                return compare(op, left, right)
            except ValueError:
                raise RuleRuntimeError(f"badarg: cannot compare {left!r} {op} {right!r}", reason="badarg",
                                       hint="cast with int()/float()/str() before comparing") from None
        return _arith(op, left, right)

    # ---------------------------------------------------------------- statements
    def select(self, stmt: a.Statement, columns: dict[str, Any]) -> dict[str, Any]:
        """Run a SELECT: the output document, or :class:`NoMatch` when WHERE is not true."""
        work = dict(columns)
        cache: dict[int, Any] = {}
        out: dict[str, Any] = {}
        with _stage("select_and_transform_error"):
            if stmt.fields is None:
                out = dict(columns)
            else:
                self.project(stmt.fields, Scope(work, cache=cache), work, out)
        if stmt.where is not None:
            with _stage("match_conditions_error"):
                verdict = self.eval(stmt.where, Scope(work, cache=cache))
            if verdict is not True:
                raise NoMatch()
        return out

    def project(self, fields: tuple[a.Field, ...], scope: Scope, work: dict[str, Any], out: dict[str, Any]) -> None:
        for field in fields:
            value = self.eval(field.expr, Scope(work, scope.local, scope.cache))
            target = field.target or _implicit_target(field.expr)
            put(out, target, value)
            put(work, target, copy.deepcopy(value))  # later fields and WHERE see aliases and payload edits

    def foreach(self, stmt: a.Statement, columns: dict[str, Any]) -> list[dict[str, Any]]:
        scope = Scope(dict(columns))
        names: dict[str, Any] = {}
        iterated: Any = UNDEFINED
        item_name = "item"
        with _stage("select_and_collect_error"):
            for i, binding in enumerate(stmt.bindings):
                value = self.eval(binding.expr, scope.child(**names))
                if i == len(stmt.bindings) - 1:
                    iterated, item_name = value, binding.name or "item"
                elif binding.name:
                    names[binding.name] = value
        if stmt.where is not None:
            with _stage("match_conditions_error"):
                verdict = self.eval(stmt.where, scope.child(**names))
            if verdict is not True:
                raise NoMatch()
        if not isinstance(iterated, list):  # a bare payload string is not decoded: json_decode(payload) is
            return []
        results = []
        for item in iterated:
            item_scope = scope.child(**names, **{item_name: item})
            if stmt.incase is not None:
                with _stage("match_incase_error"):
                    keep = self.eval(stmt.incase, item_scope)
                if keep is not True:
                    continue
            if stmt.fields is None:
                out = {**columns, **names, item_name: item}
            else:
                out = {}
                with _stage("select_and_collect_error"):
                    self.project(stmt.fields, item_scope, dict(columns), out)
            results.append(out)
        return results


class _stage:
    """Tag runtime errors with the stage EMQX names in its 400 messages."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if isinstance(ev, RuleRuntimeError) and ev.stage is None:
            ev.stage = self.name


def _implicit_target(expr: a.Node) -> a.Target:
    """Without AS, a path keeps its shape (``payload.a.b`` -> ``{"payload": {"a": {"b": ...}}}``)."""
    if isinstance(expr, a.Path) and all(isinstance(s, a.Key) for s in expr.segments):
        return a.Target(expr.root, tuple(s.name for s in expr.segments if isinstance(s, a.Key)))
    return a.Target(_expr_text(expr))


def _expr_text(expr: a.Node) -> str:
    if isinstance(expr, a.Path):
        out = expr.root
        for s in expr.segments:
            out += f".{s.name}" if isinstance(s, a.Key) else "[...]"
        return out
    if isinstance(expr, a.Call):
        return f"{expr.name}({', '.join(_expr_text(x) for x in expr.args)})"
    if isinstance(expr, a.Literal):
        return repr(expr.value) if isinstance(expr.value, str) else str(expr.value).lower()
    return type(expr).__name__.lower()


def put(doc: dict[str, Any], target: a.Target, value: Any) -> None:
    """``nested_put``: write ``value`` at ``target`` inside ``doc``, creating maps and decoding JSON strings."""
    path: list[str | int] = [target.root, *target.segments]
    container: Any = doc
    for i, seg in enumerate(path):
        last = i == len(path) - 1
        nxt = None if last else path[i + 1]
        want_list = isinstance(nxt, int) or nxt == a.APPEND
        if isinstance(seg, str) and seg != a.APPEND:
            if not isinstance(container, dict):
                return
            if last:
                container[seg] = value
                return
            child = container.get(seg)
            if isinstance(child, (str, bytes)):
                decoded = try_json(child)
                child = decoded if isinstance(decoded, (dict, list)) else None
            if want_list and not isinstance(child, list):
                child = []
            elif not want_list and not isinstance(child, dict):
                child = {}
            container[seg] = child
            container = child
            continue
        if not isinstance(container, list):
            return
        if last:
            _list_set(container, seg, value)
            return
        # a key (or position) below an array element: descend into that element
        idx = _list_index(container, seg)
        if idx is None:
            new: Any = [] if want_list else {}
            _list_set(container, seg, new)
            idx = _list_index(container, seg if seg != a.APPEND else len(container))
            assert idx is not None
        elif not isinstance(container[idx], (dict, list)):
            container[idx] = [] if want_list else {}
        container = container[idx]


def _list_index(lst: list[Any], seg: str | int) -> int | None:
    if seg == a.APPEND or not isinstance(seg, int):
        return len(lst) - 1 if lst else None
    if seg == 0:
        return 0 if lst else None
    if seg > 0:
        return seg - 1 if seg <= len(lst) else None
    return len(lst) + seg if -seg <= len(lst) else None


def _list_set(lst: list[Any], seg: str | int, value: Any) -> None:
    if seg == a.APPEND:
        lst.append(value)
    elif seg == 0:
        lst.insert(0, value)
    else:
        assert isinstance(seg, int)
        idx = _list_index(lst, seg)
        if idx is not None:
            lst[idx] = value  # out of range: the list stays as it is, as in EMQX


def _arith(op: str, left: Any, right: Any) -> Any:
    """``+`` adds numbers and concatenates when either side is a string; the rest take numbers only."""
    if op == "+" and not (is_number(left) and is_number(right)) and (isinstance(left, str) or isinstance(right, str)):
        return to_text(left) + to_text(right)
    if not (is_number(left) and is_number(right)):
        raise RuleRuntimeError(f"bad arithmetic: {left!r} {op} {right!r}", hint="cast with int()/float() first",
                               reason={"reason": "bad_sql_function_argument", "function_name": op,
                                       "arguments": [to_text(left), to_text(right)]})
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        raise RuleRuntimeError(f"badarith: division by zero: {left!r} {op} {right!r}", reason="badarith")
    if op == "/":
        return left / right
    if not (isinstance(left, int) and isinstance(right, int)):
        raise RuleRuntimeError(f"{op} needs integers, got {left!r} and {right!r}",
                               reason={"reason": "bad_sql_function_argument", "function_name": op,
                                       "arguments": [left, right]})
    q = abs(left) // abs(right)
    q = q if (left >= 0) == (right >= 0) else -q  # Erlang div truncates toward zero
    return q if op == "div" else left - right * q  # rem takes the dividend's sign


def source_matches(stmt: a.Statement, event_type: str, topic: str | None) -> bool:
    """Does the event belong to this rule's FROM?"""
    topics = [s for s in stmt.sources if not s.startswith("$events/") and not s.startswith("$bridges/")]
    events = [s[len("$events/"):] for s in stmt.sources if s.startswith("$events/")]
    if event_type == "message_publish":
        return topic is not None and any(topic_matches(topic, f) for f in topics)
    return event_type in events
