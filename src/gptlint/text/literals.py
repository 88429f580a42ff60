"""Python values as libcst nodes, for fixes that write a value into a config."""

from __future__ import annotations

from typing import Any

import libcst as cst

_TOKENS = (cst.Integer, cst.Float, cst.Name, cst.SimpleString)


def literal(value: Any) -> cst.BaseExpression:
    """The libcst expression that reads back as `value` (bool, int, float or str)."""
    if isinstance(value, bool):
        return cst.Name("True" if value else "False")
    if isinstance(value, int | float):
        node: cst.BaseExpression = (
            cst.Integer(str(abs(value))) if isinstance(value, int) else cst.Float(repr(abs(value)))
        )
        return cst.UnaryOperation(cst.Minus(), node) if value < 0 else node
    if isinstance(value, str):
        return cst.SimpleString(repr(value))
    raise TypeError(f"cannot write {value!r} as a literal")


def replace_literal(old: cst.BaseExpression, value: Any) -> cst.BaseExpression:
    """`old` rewritten to read back as `value`, changing as little as possible: a number, name
    or string token is swapped for the new token and every parenthesis, space and comment
    around it is kept (`(\\n 19  # c\\n)` becomes `(\\n 16  # c\\n)`); a sign that stays is kept
    too. An expression is replaced as a whole inside its own parentheses; one that holds a
    comment of its own is left as it is (writing the value would lose the comment)."""
    new = literal(value)
    if (
        isinstance(old, cst.UnaryOperation)
        and isinstance(new, cst.UnaryOperation)
        and isinstance(old.operator, cst.Minus)
        and isinstance(old.expression, _TOKENS)
    ):
        return old.with_changes(expression=replace_literal(old.expression, -value))
    if not isinstance(old, _TOKENS) and _has_comment(old):
        return old
    return new.with_changes(lpar=old.lpar, rpar=old.rpar)


def _has_comment(node: cst.BaseExpression) -> bool:
    """Whether `node`, not counting the whitespace inside its own outer parentheses, holds a
    comment."""
    inner = node.with_changes(lpar=(), rpar=())
    found: list[cst.Comment] = []

    class _Find(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found.append(comment)

    inner.visit(_Find())
    return bool(found)
