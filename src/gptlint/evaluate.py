"""Static evaluation of config expressions: literals, arithmetic and names, never user code.

Anything that would need running code (calls other than a few pure builtins, attributes,
`os.environ`, comprehensions, lambdas ...) evaluates to UNKNOWN, and so does any expression
that uses an UNKNOWN value. Nothing is guessed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import libcst as cst

from gptlint.values import UNKNOWN

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.Divide: operator.truediv,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
    cst.Power: operator.pow,
    cst.LeftShift: operator.lshift,
    cst.RightShift: operator.rshift,
    cst.BitAnd: operator.and_,
    cst.BitOr: operator.or_,
    cst.BitXor: operator.xor,
}

_AUGMENTED: dict[type, type] = {
    cst.AddAssign: cst.Add,
    cst.SubtractAssign: cst.Subtract,
    cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide,
    cst.FloorDivideAssign: cst.FloorDivide,
    cst.ModuloAssign: cst.Modulo,
    cst.PowerAssign: cst.Power,
    cst.LeftShiftAssign: cst.LeftShift,
    cst.RightShiftAssign: cst.RightShift,
    cst.BitAndAssign: cst.BitAnd,
    cst.BitOrAssign: cst.BitOr,
    cst.BitXorAssign: cst.BitXor,
}

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    cst.Equal: operator.eq,
    cst.NotEqual: operator.ne,
    cst.LessThan: operator.lt,
    cst.LessThanEqual: operator.le,
    cst.GreaterThan: operator.gt,
    cst.GreaterThanEqual: operator.ge,
    cst.In: lambda a, b: a in b,
    cst.NotIn: lambda a, b: a not in b,
    cst.Is: operator.is_,
    cst.IsNot: operator.is_not,
}

# Builtins whose result depends only on their (known) arguments.
_PURE_CALLS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "dict": dict,
    "list": list,
    "tuple": tuple,
}

_CONSTANTS = {"True": True, "False": False, "None": None}
_MAX_POWER_EXPONENT = 4096
_MAX_SEQUENCE = 100_000


def evaluate(node: cst.BaseExpression, env: Mapping[str, Any]) -> Any:
    """The value of `node` given the names in `env`, or UNKNOWN."""
    try:
        return _eval(node, env)
    except (ArithmeticError, TypeError, ValueError, KeyError, IndexError, MemoryError):
        return UNKNOWN


def apply_augmented(operator_node: cst.BaseAugOp, current: Any, value: Any) -> Any:
    """`current <op>= value` (e.g. `max_iters += 1000`), or UNKNOWN."""
    binary = _AUGMENTED.get(type(operator_node))
    if binary is None or UNKNOWN in (current, value):
        return UNKNOWN
    try:
        return _binary_value(binary, current, value)
    except (ArithmeticError, TypeError, ValueError, MemoryError):
        return UNKNOWN


def _eval(node: cst.BaseExpression, env: Mapping[str, Any]) -> Any:
    if isinstance(node, cst.Integer | cst.Float):
        return node.evaluated_value
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value
    if isinstance(node, cst.ConcatenatedString):
        left, right = _eval(node.left, env), _eval(node.right, env)
        return UNKNOWN if UNKNOWN in (left, right) else left + right
    if isinstance(node, cst.FormattedString):
        return _eval_fstring(node, env)
    if isinstance(node, cst.Name):
        if node.value in _CONSTANTS:
            return _CONSTANTS[node.value]
        return env.get(node.value, UNKNOWN)
    if isinstance(node, cst.UnaryOperation):
        value = _eval(node.expression, env)
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(node.operator, cst.Minus):
            return -value
        if isinstance(node.operator, cst.Plus):
            return +value
        if isinstance(node.operator, cst.Not):
            return not value
        return ~value
    if isinstance(node, cst.BinaryOperation):
        return _eval_binary(node, env)
    if isinstance(node, cst.BooleanOperation):
        left = _eval(node.left, env)
        if left is UNKNOWN:
            return UNKNOWN
        if isinstance(node.operator, cst.And):
            return _eval(node.right, env) if left else left
        return left if left else _eval(node.right, env)
    if isinstance(node, cst.Comparison):
        left = _eval(node.left, env)
        for target in node.comparisons:
            right = _eval(target.comparator, env)
            op = _COMPARE.get(type(target.operator))
            if UNKNOWN in (left, right) or op is None:
                return UNKNOWN
            if not op(left, right):
                return False
            left = right
        return True
    if isinstance(node, cst.IfExp):
        test = _eval(node.test, env)
        if test is UNKNOWN:
            return UNKNOWN
        return _eval(node.body if test else node.orelse, env)
    if isinstance(node, cst.Tuple | cst.List):
        items = [_eval_element(el, env) for el in node.elements]
        if any(item is UNKNOWN for item in items):
            return UNKNOWN
        return tuple(items) if isinstance(node, cst.Tuple) else items
    if isinstance(node, cst.Dict):
        return _eval_dict(node, env)
    if isinstance(node, cst.Subscript):
        return _eval_subscript(node, env)
    if isinstance(node, cst.Call):
        return _eval_call(node, env)
    return UNKNOWN


def _eval_element(element: cst.BaseElement, env: Mapping[str, Any]) -> Any:
    if isinstance(element, cst.StarredElement):
        return UNKNOWN
    return _eval(element.value, env)


def _eval_binary(node: cst.BinaryOperation, env: Mapping[str, Any]) -> Any:
    left, right = _eval(node.left, env), _eval(node.right, env)
    if UNKNOWN in (left, right):
        return UNKNOWN
    return _binary_value(type(node.operator), left, right)


def _binary_value(operator_type: type, left: Any, right: Any) -> Any:
    op = _BINARY.get(operator_type)
    if op is None:
        return UNKNOWN
    if op is operator.pow and isinstance(right, int | float) and abs(right) > _MAX_POWER_EXPONENT:
        return UNKNOWN
    if op in (operator.lshift, operator.mul) and _too_large(left, right):
        return UNKNOWN
    return op(left, right)


def _too_large(left: Any, right: Any) -> bool:
    """Guard against `'a' * 10**12` or `1 << 10**9` exhausting memory."""
    for a, b in ((left, right), (right, left)):
        if (
            isinstance(a, str | list | tuple)
            and isinstance(b, int)
            and b * max(len(a), 1) > _MAX_SEQUENCE
        ):
            return True
    return isinstance(right, int) and isinstance(left, int) and right > _MAX_POWER_EXPONENT * 16


def _eval_fstring(node: cst.FormattedString, env: Mapping[str, Any]) -> Any:
    parts: list[str] = []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            parts.append(part.value)
            continue
        if part.conversion is not None or part.format_spec is not None:
            return UNKNOWN
        value = _eval(part.expression, env)
        if value is UNKNOWN:
            return UNKNOWN
        parts.append(str(value))
    return "".join(parts)


def _eval_dict(node: cst.Dict, env: Mapping[str, Any]) -> Any:
    result = {}
    for element in node.elements:
        if not isinstance(element, cst.DictElement):
            return UNKNOWN
        key, value = _eval(element.key, env), _eval(element.value, env)
        if UNKNOWN in (key, value):
            return UNKNOWN
        result[key] = value
    return result


def _eval_subscript(node: cst.Subscript, env: Mapping[str, Any]) -> Any:
    container = _eval(node.value, env)
    if container is UNKNOWN or len(node.slice) != 1:
        return UNKNOWN
    index = node.slice[0].slice
    if not isinstance(index, cst.Index):
        return UNKNOWN
    key = _eval(index.value, env)
    if key is UNKNOWN:
        return UNKNOWN
    return container[key]


def _eval_call(node: cst.Call, env: Mapping[str, Any]) -> Any:
    if not isinstance(node.func, cst.Name) or node.func.value not in _PURE_CALLS:
        return UNKNOWN
    if node.func.value in env:  # the builtin is shadowed by a config name
        return UNKNOWN
    args, kwargs = [], {}
    for arg in node.args:
        if arg.star:
            return UNKNOWN
        value = _eval(arg.value, env)
        if value is UNKNOWN:
            return UNKNOWN
        if arg.keyword is None:
            args.append(value)
        else:
            kwargs[arg.keyword.value] = value
    return _PURE_CALLS[node.func.value](*args, **kwargs)
