"""A tiny arithmetic language over named metrics, for alarms like ``e / r`` (pure, no eval).

Grammar (``+ - * /``, unary minus, parentheses, numbers, metric ids)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := ("-" | "+") unary | atom
    atom   := NUMBER | ID | "(" expr ")"

Parsing builds a small tree of frozen dataclasses; nothing is ever handed to ``eval``. An
expression is at most 500 characters and nests at most 32 levels. Evaluating with a missing
operand (``None``), a division by zero or a non-finite result gives ``None``: the datapoint
is missing, and the alarm's missing-data rule decides what that means.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["BinOp", "Expr", "Neg", "Num", "Ref", "evaluate_expr", "parse_expression", "refs"]

MAX_LENGTH = 500
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[-+*/()]))"
)


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Neg:
    operand: Expr


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: Expr
    right: Expr


Expr = Num | Ref | Neg | BinOp


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position) triples; kind is num, id, op or end."""
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            where = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise ValueError(f"unexpected {text[where]!r} at position {where + 1}")
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expr(self, depth: int) -> Expr:
        node = self.term(depth)
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            node = BinOp(op, node, self.term(depth))
        return node

    def term(self, depth: int) -> Expr:
        node = self.unary(depth)
        while self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = self.take()[1]
            node = BinOp(op, node, self.unary(depth))
        return node

    def unary(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise ValueError(f"expression nests deeper than {MAX_DEPTH} levels")
        kind, text, _ = self.peek()
        if kind == "op" and text in ("-", "+"):
            self.take()
            operand = self.unary(depth + 1)
            return Neg(operand) if text == "-" else operand
        return self.atom(depth)

    def atom(self, depth: int) -> Expr:
        kind, text, pos = self.take()
        if kind == "num":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(f"number {text!r} at position {pos + 1} is too large")
            return Num(value)
        if kind == "id":
            return Ref(text)
        if kind == "op" and text == "(":
            node = self.expr(depth + 1)
            kind, text, pos = self.take()
            if (kind, text) != ("op", ")"):
                raise ValueError(f"expected ')' at position {pos + 1}, found {_show(kind, text)}")
            return node
        raise ValueError(
            f"expected a number, a metric id or '(' at position {pos + 1},"
            f" found {_show(kind, text)}"
        )


def _show(kind: str, text: str) -> str:
    return "the end" if kind == "end" else repr(text)


def parse_expression(text: str) -> Expr:
    """The tree of ``text``; ValueError says what is wrong and at which (1-based) position."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ValueError("expression is empty")
    parser = _Parser(text)
    node = parser.expr(0)
    kind, rest, pos = parser.take()
    if kind != "end":
        raise ValueError(f"unexpected {rest!r} at position {pos + 1}")
    return node


def refs(node: Expr) -> set[str]:
    """The metric ids an expression reads."""
    if isinstance(node, Ref):
        return {node.name}
    if isinstance(node, Neg):
        return refs(node.operand)
    if isinstance(node, BinOp):
        return refs(node.left) | refs(node.right)
    return set()


def evaluate_expr(node: Expr, values: Mapping[str, float | None]) -> float | None:
    """The value of ``node``; None when an operand is missing, on x/0 or a non-finite result."""
    result = _eval(node, values)
    return result if result is not None and math.isfinite(result) else None


def _eval(node: Expr, values: Mapping[str, float | None]) -> float | None:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        return values.get(node.name)
    if isinstance(node, Neg):
        v = _eval(node.operand, values)
        return None if v is None else -v
    left, right = _eval(node.left, values), _eval(node.right, values)
    if left is None or right is None:
        return None
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return None if right == 0 else left / right
