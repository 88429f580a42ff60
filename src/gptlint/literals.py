"""Python values as libcst nodes, for fixes that write a value into a config."""

from __future__ import annotations

from typing import Any

import libcst as cst


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
