"""Static evaluation of config expressions: literals, arithmetic and names, never user code.

Anything that would need running code (calls other than a few pure builtins, attributes,
`os.environ`, comprehensions, lambdas ...) evaluates to UNKNOWN, and so does any expression
that uses an UNKNOWN value. Nothing is guessed.
"""

from __future__ import annotations

import operator
import unicodedata
from collections.abc import Callable, Mapping, Sized
from typing import Any

import libcst as cst

from gptlint.facts.values import UNKNOWN
from gptlint.text.joins import ImplicitJoin


def identifier(name: str) -> str:
    """A name as Python binds it: NFKC-normalised."""
    return name if name.isascii() else unicodedata.normalize("NFKC", name)


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    cst.Add: operator.add,
    ImplicitJoin: operator.add,  # a long implicit string concatenation read in pieces
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
MAX_INT_BITS = 10_000
"""Integers larger than this are too large to evaluate statically: UNKNOWN."""
MAX_LENGTH = 1_000_000
"""Strings, lists, tuples and dicts longer than this: UNKNOWN."""
MAX_STEPS = 200_000
"""Nodes one evaluation may visit, and elements its comparisons, hashes and `str()`s may
visit (repeated references counted each time); past it the value is UNKNOWN (a 5 MB list
literal, `str([[0]*10**5]*10**5)`)."""


class TooLarge(ArithmeticError):
    """A value, or the work to compute it, is past the evaluation budget."""


_steps = [0]


TOO_LARGE = "too large to evaluate statically"
"""Why a value is UNKNOWN when it (or the work to compute it) is past the budget."""


def evaluate(node: cst.BaseExpression, env: Mapping[str, Any]) -> Any:
    """The value of `node` given the names in `env`, or UNKNOWN (also for values past the
    budget: MAX_INT_BITS, MAX_LENGTH, MAX_STEPS)."""
    return evaluate_why(node, env)[0]


def evaluate_why(node: cst.BaseExpression, env: Mapping[str, Any]) -> tuple[Any, str | None]:
    """`evaluate(node, env)` and, where the value is UNKNOWN because it is past the budget
    (`10**10**10`, `str([0]*10**8)`), why: TOO_LARGE. None otherwise."""
    saved = _steps[0]
    _steps[0] = 0
    try:
        return _checked(_eval(node, env)), None
    except (TooLarge, OverflowError):
        return UNKNOWN, TOO_LARGE
    except (
        ArithmeticError,
        TypeError,
        ValueError,
        KeyError,
        IndexError,
        MemoryError,
        RecursionError,
    ):
        return UNKNOWN, None
    finally:
        _steps[0] = saved


def apply_augmented(operator_node: cst.BaseAugOp, current: Any, value: Any) -> Any:
    """`current <op>= value` (e.g. `max_iters += 1000`), or UNKNOWN."""
    return apply_augmented_why(operator_node, current, value)[0]


def apply_augmented_why(
    operator_node: cst.BaseAugOp, current: Any, value: Any
) -> tuple[Any, str | None]:
    """`apply_augmented`, and TOO_LARGE where the result is past the budget."""
    binary = _AUGMENTED.get(type(operator_node))
    if binary is None or UNKNOWN in (current, value):
        return UNKNOWN, None
    try:
        return _checked(_binary_value(binary, current, value)), None
    except (TooLarge, OverflowError):
        return UNKNOWN, TOO_LARGE
    except (ArithmeticError, TypeError, ValueError, MemoryError, RecursionError):
        return UNKNOWN, None


def _checked(value: Any) -> Any:
    """`value`, unless it is past the budget (TooLarge)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TooLarge
    elif isinstance(value, str | bytes | list | tuple | dict) and len(value) > MAX_LENGTH:
        raise TooLarge
    return value


def _eval(node: cst.BaseExpression, env: Mapping[str, Any]) -> Any:
    _steps[0] += 1
    if _steps[0] > MAX_STEPS:
        raise TooLarge
    return _checked(_eval_node(node, env))


def _measure(value: Any) -> tuple[int, int]:
    """(elements, characters): how many elements comparing, hashing or printing `value`
    visits, counting each reference to a shared list again, and the length of its repr().
    Raises TooLarge, without building anything, once either is past what is left of the
    budget (MAX_STEPS, MAX_LENGTH)."""
    known: dict[int, tuple[int, int]] = {}  # by id: every object reached is alive meanwhile
    steps_left = MAX_STEPS - _steps[0]

    def size(item: Any) -> tuple[int, int]:
        if id(item) in known:
            return known[id(item)]
        if isinstance(item, list | tuple | dict):
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            elements, characters = 1, 3
            for child in children:
                child_elements, child_characters = size(child)
                elements += child_elements
                characters += child_characters + 2
                if elements > steps_left or characters > MAX_LENGTH:
                    raise TooLarge
        elif isinstance(item, int) and not isinstance(item, bool):
            elements, characters = 1, item.bit_length() * 30103 // 100_000 + 2
        else:
            elements, characters = 1, len(repr(item))
        known[id(item)] = (elements, characters)
        return elements, characters

    return size(value)


def _charge(*values: Any) -> None:
    """Count the elements that comparing or hashing `values` visits against MAX_STEPS."""
    for value in values:
        if isinstance(value, list | tuple | dict):
            _steps[0] += _measure(value)[0]


def _charge_text(value: Any) -> None:
    """Raise TooLarge where printing `value` (str(), an f-string, `'%s' %`) would build more
    than MAX_LENGTH characters or visit more elements than MAX_STEPS leaves:
    `str([[0]*10**5]*10**5)` would build 3·10**10 characters. Else count the elements."""
    elements, characters = _measure(value)
    if characters > MAX_LENGTH:
        raise TooLarge
    _steps[0] += elements


def _text(value: Any) -> str:
    """`str(value)`, once its size is known to be within the budget."""
    if isinstance(value, str):
        return value
    _charge_text(value)
    return str(value)


def _eval_node(node: cst.BaseExpression, env: Mapping[str, Any]) -> Any:
    if isinstance(node, cst.Integer):
        return int(node.value.replace("_", ""), 0)  # what evaluated_value's ast.parse gives
    if isinstance(node, cst.Float):
        text = node.value
        return node.evaluated_value if text[-1] in "jJ" else float(text.replace("_", ""))
    if isinstance(node, cst.SimpleString):
        return _string_value(node)
    if isinstance(node, cst.ConcatenatedString):
        left, right = _eval(node.left, env), _eval(node.right, env)
        return UNKNOWN if UNKNOWN in (left, right) else left + right
    if isinstance(node, cst.FormattedString):
        return _eval_fstring(node, env)
    if isinstance(node, cst.Name):
        if node.value in _CONSTANTS:
            return _CONSTANTS[node.value]
        return env.get(identifier(node.value), UNKNOWN)
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
            _charge(left, right)
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


def _string_value(node: cst.SimpleString) -> Any:
    """A string literal's value: read directly where it has no prefix, backslash or triple
    quote (most config strings), else as libcst reads it (ast.literal_eval: a compile each)."""
    text = node.value
    if text[0] in "'\"" and "\\" not in text and text[:3] not in ("'''", '"""'):
        return text[1:-1]
    return node.evaluated_value


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
        if isinstance(left, int) and abs(left) > 1 and right > 0:
            raise TooLarge  # 10**10**10
        return UNKNOWN
    if _too_large(op, left, right):
        raise TooLarge
    if op is operator.mod and isinstance(left, str | bytes):
        _charge_text(right)  # '%s' % (y,) prints y
    return op(left, right)


def _bits(value: Any) -> int | None:
    return value.bit_length() if isinstance(value, int) else None


def _too_large(op: Callable[[Any, Any], Any], left: Any, right: Any) -> bool:
    """Whether `left op right` would be past the budget (`'a' * 10**12`, `1 << 10**9`,
    `10**4000`, a 10,000-bit number squared), judged before computing it."""
    if op is operator.mul:
        for a, b in ((left, right), (right, left)):
            if isinstance(a, str | bytes | list | tuple) and isinstance(b, int):
                return b * max(len(a), 1) > _MAX_SEQUENCE
        left_bits, right_bits = _bits(left), _bits(right)
        return (
            left_bits is not None
            and right_bits is not None
            and left_bits + right_bits > (MAX_INT_BITS + 1)
        )
    if op is operator.lshift and isinstance(left, int) and isinstance(right, int):
        return left != 0 and right > 0 and left.bit_length() + right > MAX_INT_BITS
    if op is operator.pow and isinstance(left, int) and isinstance(right, int) and right > 0:
        return abs(left) > 1 and (abs(left).bit_length() - 1) * right > MAX_INT_BITS
    if op is operator.add and isinstance(left, str | bytes | list | tuple):
        return isinstance(right, Sized) and len(left) + len(right) > MAX_LENGTH
    return False


def _eval_fstring(node: cst.FormattedString, env: Mapping[str, Any]) -> Any:
    parts: list[str] = []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            parts.append(part.value)
            continue
        part = cst.ensure_type(part, cst.FormattedStringExpression)  # the only other part
        if part.conversion is not None or part.format_spec is not None:
            return UNKNOWN
        value = _eval(part.expression, env)
        if value is UNKNOWN:
            return UNKNOWN
        parts.append(_text(value))
    return "".join(parts)


def _eval_dict(node: cst.Dict, env: Mapping[str, Any]) -> Any:
    result = {}
    for element in node.elements:
        if not isinstance(element, cst.DictElement):
            return UNKNOWN
        key, value = _eval(element.key, env), _eval(element.value, env)
        if UNKNOWN in (key, value):
            return UNKNOWN
        _charge(key)
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
    _charge(key)
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
    if node.func.value == "round" and any(
        isinstance(v, int) and abs(v) > 1000 for v in [*args[1:], *kwargs.values()]
    ):
        raise TooLarge  # round(x, -10**8) computes 10**(10**8)
    if node.func.value == "str" and len(args) == 1 and not kwargs:
        return _text(args[0])
    _charge(*args, *kwargs.values())
    return _PURE_CALLS[node.func.value](*args, **kwargs)
