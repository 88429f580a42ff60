"""A Python expression's value when it is a literal or simple arithmetic on literals
(`80*524288`, `2**15`, `-1`), evaluated safely, without running anything."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass

_MAX_EXPONENT = 256
_MAX_BITS = 4096
_BINARY: dict[type[ast.operator], Callable[[object, object], object]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


@dataclass(frozen=True)
class Unread:
    """An expression beyond literals and arithmetic (a call, a name ...)."""


def _number(value: object) -> bool:
    """A number small enough to compute with (no bool; an int of at most _MAX_BITS bits)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, int) or value.bit_length() <= _MAX_BITS


def evaluate(node: ast.expr) -> object:
    """The expression's value, or `Unread()`."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [evaluate(e) for e in node.elts]
        if any(isinstance(i, Unread) for i in items):
            return Unread()
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = evaluate(node.operand)
        if not _number(operand):
            return Unread()
        assert isinstance(operand, int | float)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = evaluate(node.left), evaluate(node.right)
        if not (_number(left) and _number(right)):
            return Unread()
        assert isinstance(right, int | float)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            return Unread()
        try:
            return _BINARY[type(node.op)](left, right)
        except (ArithmeticError, ValueError):
            return Unread()
    return Unread()
