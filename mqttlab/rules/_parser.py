"""Tokenizer and recursive-descent parser for EMQX 5 rule SQL. Errors carry line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import _ast as a
from ._errors import RuleSqlError

KEYWORDS = {"select", "from", "where", "foreach", "do", "incase", "as", "case", "when", "then", "else", "end",
            "and", "or", "not", "div", "mod", "true", "false", "in"}
MAX_SQL = 64 * 1024
MAX_DEPTH = 40

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*)
  | (?P<num>\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|0x[0-9a-fA-F]+|\d+)
  | (?P<sq>'[^']*')
  | (?P<dq>"[^"]*")
  | (?P<bq>`[^`]*`)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>\.\.|=~|!=|<>|>=|<=|[-+*/=<>(),.\[\]])
""", re.VERBOSE)


@dataclass(frozen=True)
class Tok:
    kind: str  # num, sq, dq, ident, kw, op, eof
    text: str
    value: object
    line: int
    col: int


def tokenize(sql: str) -> list[Tok]:
    if len(sql) > MAX_SQL:
        raise RuleSqlError(f"SQL is longer than {MAX_SQL} characters", 1, 1)
    toks: list[Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        col = pos - line_start + 1
        if not m:
            raise RuleSqlError(f"unexpected character {sql[pos]!r}", line, col)
        kind = m.lastgroup or ""
        text = m.group()
        if kind not in ("ws", "comment"):
            value: object = text
            if kind == "num":
                value = int(text, 16) if text.startswith("0x") else float(text) if re.search(r"[.eE]", text) else int(text)
            elif kind == "sq":
                value = text[1:-1]  # EMQX string literals have no escape sequences: use unescape()
            elif kind in ("dq", "bq"):
                value = text[1:-1]
                kind = "dq"
            elif kind == "ident" and text.lower() in KEYWORDS:
                kind, value = "kw", text.lower()
            toks.append(Tok(kind, text, value, line, col))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = pos + text.rfind("\n") + 1
        pos = m.end()
    toks.append(Tok("eof", "", None, line, len(sql) - line_start + 1))
    return toks


class Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks = tokenize(sql)
        self.i = 0
        self.depth = 0

    # ------------------------------------------------------------------ helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def error(self, message: str, tok: Tok | None = None) -> RuleSqlError:
        t = tok or self.tok
        found = "end of input" if t.kind == "eof" else repr(t.text)
        return RuleSqlError(f"{message}, found {found}", t.line, t.col)

    def at_kw(self, *words: str) -> bool:
        return self.tok.kind == "kw" and self.tok.value in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def take(self) -> Tok:
        t = self.tok
        self.i += 1
        return t

    def expect_kw(self, word: str) -> Tok:
        if not self.at_kw(word):
            raise self.error(f"expected {word.upper()}")
        return self.take()

    def expect_op(self, op: str) -> Tok:
        if not self.at_op(op):
            raise self.error(f"expected {op!r}")
        return self.take()

    # ------------------------------------------------------------------ statements
    def statement(self) -> a.Statement:
        if self.at_kw("select"):
            self.take()
            fields = self.fields()
            sources = self.from_clause()
            where = self.where()
            stmt = a.Statement("select", fields, sources, where, sql=self.sql)
        elif self.at_kw("foreach"):
            self.take()
            bindings = self.bindings()
            fields = None
            if self.at_kw("do"):
                self.take()
                fields = self.fields()
            incase = None
            if self.at_kw("incase"):
                self.take()
                incase = self.expr()
            sources = self.from_clause()
            where = self.where()
            stmt = a.Statement("foreach", fields, sources, where, bindings, incase, sql=self.sql)
        else:
            raise self.error("a rule starts with SELECT or FOREACH")
        if self.tok.kind != "eof":
            raise self.error("unexpected text after the statement")
        return stmt

    def fields(self) -> tuple[a.Field, ...] | None:
        if self.at_op("*"):
            self.take()
            return None
        out = [self.field()]
        while self.at_op(","):
            self.take()
            out.append(self.field())
        return tuple(out)

    def field(self) -> a.Field:
        expr = self.expr()
        target = None
        if self.at_kw("as"):
            self.take()
            target = self.target()
        return a.Field(expr, target)

    def target(self) -> a.Target:
        t = self.tok
        if t.kind not in ("ident", "dq", "kw"):
            raise self.error("expected a name after AS")
        self.take()
        root = str(t.value)
        segs: list[str | int] = []
        while self.at_op(".", "["):
            if self.take().text == ".":
                k = self.tok
                if k.kind not in ("ident", "sq", "dq", "kw", "num"):
                    raise self.error("expected a key after '.'")
                self.take()
                segs.append(str(k.value))
            else:
                neg = False
                if self.at_op("-"):
                    self.take()
                    neg = True
                n = self.tok
                if n.kind != "num" or not isinstance(n.value, int):
                    raise self.error("expected an array position (an integer) in the AS target")
                self.take()
                self.expect_op("]")
                segs.append(a.APPEND if neg and n.value == 0 else (-n.value if neg else n.value))
        return a.Target(root, tuple(segs))

    def bindings(self) -> tuple[a.Binding, ...]:
        out = []
        while True:
            expr = self.expr()
            name = None
            if self.at_kw("as"):
                self.take()
                t = self.tok
                if t.kind not in ("ident", "dq"):
                    raise self.error("expected a name after AS")
                self.take()
                name = str(t.value)
            out.append(a.Binding(expr, name))
            if self.at_op(","):
                self.take()
                continue
            if self.at_kw("do", "incase", "from"):
                break
            if self.tok.kind == "eof":
                raise self.error("expected FROM")
        return tuple(out)

    def from_clause(self) -> tuple[str, ...]:
        self.expect_kw("from")
        out = []
        while True:
            t = self.tok
            if t.kind not in ("sq", "dq"):
                raise self.error("FROM takes quoted topic filters or $events/... names")
            self.take()
            source = str(t.value)
            if not source:
                raise self.error("empty topic in FROM", t)
            out.append(source)
            if not self.at_op(","):
                break
            self.take()
        return tuple(out)

    def where(self) -> a.Node | None:
        if self.at_kw("where"):
            self.take()
            return self.expr()
        return None

    # ------------------------------------------------------------------ expressions
    def expr(self) -> a.Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("expression nested too deeply")
        try:
            return self.or_expr()
        finally:
            self.depth -= 1

    def or_expr(self) -> a.Node:
        left = self.and_expr()
        while self.at_kw("or"):
            self.take()
            left = a.Binary("or", left, self.and_expr())
        return left

    def and_expr(self) -> a.Node:
        left = self.not_expr()
        while self.at_kw("and"):
            self.take()
            left = a.Binary("and", left, self.not_expr())
        return left

    def not_expr(self) -> a.Node:
        if self.at_kw("not"):
            self.take()
            return a.Unary("not", self.not_expr())
        return self.cmp_expr()

    def cmp_expr(self) -> a.Node:
        left = self.add_expr()
        if self.at_kw("in"):
            self.take()
            self.expect_op("(")
            items = [self.expr()]
            while self.at_op(","):
                self.take()
                items.append(self.expr())
            self.expect_op(")")
            return a.Binary("in", left, a.ListLit(tuple(items)))
        if self.at_op("=", "!=", "<>", ">", "<", ">=", "<=", "=~"):
            op = self.take().text
            left = a.Binary("!=" if op == "<>" else op, left, self.add_expr())
        return left

    def add_expr(self) -> a.Node:
        left = self.mul_expr()
        while self.at_op("+", "-"):
            op = self.take().text
            left = a.Binary(op, left, self.mul_expr())
        return left

    def mul_expr(self) -> a.Node:
        left = self.unary()
        while self.at_op("*", "/") or self.at_kw("div", "mod"):
            t = self.take()
            left = a.Binary(str(t.value) if t.kind == "kw" else t.text, left, self.unary())
        return left

    def unary(self) -> a.Node:
        if self.at_op("-"):
            self.take()
            operand = self.unary()
            if isinstance(operand, a.Literal) and isinstance(operand.value, (int, float)):
                return a.Literal(-operand.value)
            return a.Unary("-", operand)
        return self.postfix()

    def postfix(self) -> a.Node:
        base = self.primary()
        segs: list[a.Segment] = []
        while self.at_op(".", "["):
            if self.take().text == ".":
                k = self.tok
                if k.kind not in ("ident", "sq", "dq", "kw", "num"):
                    raise self.error("expected a key after '.'")
                self.take()
                segs.append(a.Key(str(k.value) if k.kind != "kw" else k.text))
            else:
                lo = self.expr()
                if self.at_op(".."):
                    self.take()
                    hi = self.expr()
                    segs.append(a.Range(lo, hi))
                else:
                    segs.append(a.Index(lo))
                self.expect_op("]")
        if not segs:
            return base
        if isinstance(base, a.Path):
            return a.Path(base.root, base.segments + tuple(segs))
        return a.Apply(base, tuple(segs))

    def primary(self) -> a.Node:
        t = self.tok
        if t.kind == "num":
            self.take()
            return a.Literal(t.value)
        if t.kind == "sq":
            self.take()
            return a.Literal(t.value)
        if t.kind == "dq":
            self.take()
            return a.Path(str(t.value))
        if t.kind == "kw" and t.value in ("true", "false"):
            self.take()
            return a.Literal(t.value == "true")
        if t.kind == "kw" and t.value == "case":
            return self.case()
        if self.at_op("("):
            self.take()
            inner = self.expr()
            self.expect_op(")")
            return inner
        if self.at_op("["):
            return self.list_literal()
        if t.kind == "ident":
            self.take()
            if self.at_op("("):
                self.take()
                args: list[a.Node] = []
                if not self.at_op(")"):
                    args.append(self.expr())
                    while self.at_op(","):
                        self.take()
                        args.append(self.expr())
                self.expect_op(")")
                return a.Call(t.text.lower(), tuple(args), t.line, t.col)
            return a.Path(t.text)
        raise self.error("expected an expression")

    def list_literal(self) -> a.Node:
        self.expect_op("[")
        if self.at_op("]"):
            self.take()
            return a.ListLit(())
        first = self.expr()
        if self.at_op(".."):
            self.take()
            hi = self.expr()
            self.expect_op("]")
            return a.RangeLit(first, hi)
        items = [first]
        while self.at_op(","):
            self.take()
            items.append(self.expr())
        self.expect_op("]")
        return a.ListLit(tuple(items))

    def case(self) -> a.Node:
        self.expect_kw("case")
        subject = None if self.at_kw("when") else self.expr()
        whens = []
        while self.at_kw("when"):
            self.take()
            cond = self.expr()
            self.expect_kw("then")
            whens.append((cond, self.expr()))
        if not whens:
            raise self.error("CASE needs at least one WHEN")
        default = None
        if self.at_kw("else"):
            self.take()
            default = self.expr()
        self.expect_kw("end")
        return a.Case(subject, tuple(whens), default)


def parse(sql: str) -> a.Statement:
    """Parse one rule statement; raises :class:`RuleSqlError` (with line and column) on bad SQL."""
    if not isinstance(sql, str) or not sql.strip():
        raise RuleSqlError("empty SQL", 1, 1)
    parser = Parser(sql)
    try:
        return parser.statement()
    except RecursionError:  # NOT NOT NOT ... or - - - ... chains recurse without passing through expr()
        raise parser.error("expression nested too deeply") from None
