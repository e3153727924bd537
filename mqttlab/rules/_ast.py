"""The syntax tree of an EMQX rule statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Node:
    __slots__ = ()


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    expr: Node


@dataclass(frozen=True)
class Range:
    lo: Node
    hi: Node


Segment = Key | Index | Range


@dataclass(frozen=True)
class Path(Node):
    """A column or variable and the keys/indexes below it: ``payload.a[1].b``."""

    root: str
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Apply(Node):
    """Indexing/keying of a non-path value: ``json_decode(payload)[1].x``."""

    base: Node
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class RangeLit(Node):
    lo: Node
    hi: Node


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]
    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Case(Node):
    subject: Node | None  # CASE x WHEN v THEN r ... (simple form) or None (searched form)
    whens: tuple[tuple[Node, Node], ...]
    default: Node | None


@dataclass(frozen=True)
class Target:
    """Where ``expr AS target`` puts a value: keys and array positions (``a.b``, ``c[-0]``, ``payload.x``)."""

    root: str
    segments: tuple[str | int, ...] = ()  # str = key, int = array position (0 prepend, -0 append -> "append")

    def text(self) -> str:
        out = self.root
        for seg in self.segments:
            out += f".{seg}" if isinstance(seg, str) and seg != "\x00append" else f"[{'-0' if seg == chr(0) + 'append' else seg}]"
        return out


APPEND = "\x00append"


@dataclass(frozen=True)
class Field:
    expr: Node
    target: Target | None  # None: output key is the expression text


@dataclass(frozen=True)
class Binding:
    expr: Node
    name: str | None


@dataclass(frozen=True)
class Statement:
    kind: str  # "select" | "foreach"
    fields: tuple[Field, ...] | None  # None = SELECT * (or FOREACH without DO)
    sources: tuple[str, ...]
    where: Node | None = None
    bindings: tuple[Binding, ...] = ()
    incase: Node | None = None
    sql: str = field(default="", compare=False)
