"""What a training script does to config keys after the configurator ran: `if min_lr == None:
min_lr = learning_rate / 10`, an old fork's `gradient_accumulation_steps *= 8` on one GPU. Read
from the script's top-level statements (and `if` branches), and applied to a resolved config
wherever the values and tests evaluate statically; the rest is left as the config says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import libcst as cst

from gptlint.facts.values import UNKNOWN
from gptlint.nanogpt.evaluate import apply_augmented, evaluate
from gptlint.nanogpt.forkmodel import MAY_BUILD, model_call, other_model_said

if TYPE_CHECKING:
    from gptlint.nanogpt.resolve import EffectiveConfig

Condition = tuple[cst.BaseExpression, bool]  # an `if` test and the branch taken


@dataclass(frozen=True, eq=False)
class Rewrite:
    """`key = value` or `key <op>= value` in train.py after the configurator, under the `if`
    tests in `conditions` (each must evaluate to the branch's truth)."""

    key: str
    value: cst.BaseExpression
    operator: cst.BaseAugOp | None
    conditions: tuple[Condition, ...]
    line: int


MODEL = "model"
"""The global train.py builds its model into: its rewrites say which model runs."""

OPTIMIZER = "optimizer"
"""The global train.py builds its optimizer into: its rewrites say which optimizer runs."""
_ADAMW = frozenset({"configure_optimizers", "AdamW"})
"""Calls that build nanoGPT's AdamW."""

_DDP_TEST = re.compile(r"environ[^\n]*RANK|RANK[^\n]*environ")
_SPLIT = re.compile(r"world_size")


def collect(
    module: cst.Module, start: int, keys: set[str], line_of: Any
) -> tuple[tuple[Rewrite, ...], frozenset[str]]:
    """The rewrites of `keys` in `module.body[start:]`, and the names that say whether the
    script runs under DDP (`ddp = int(os.environ.get('RANK', -1)) != -1`). The accumulation's
    split among DDP processes (`gradient_accumulation_steps //= ddp_world_size`) is not a
    rewrite: `run.derive_run` models it. `line_of(node)` is the node's line."""
    rewrites: list[Rewrite] = []
    ddp: set[str] = set()
    for statement in module.body[start:]:
        for small, conditions in _smalls(statement, ()):
            built = _model_assignment(small)
            if built is not None:
                rewrites.append(Rewrite(MODEL, built, None, conditions, line_of(small)))
                continue
            target, value, operator = _assignment(small)
            if target is None or value is None:
                continue
            if not conditions and _DDP_TEST.search(module.code_for_node(value)):
                ddp.add(target)
            if target == OPTIMIZER and isinstance(value, cst.Call):
                rewrites.append(Rewrite(target, value, None, conditions, line_of(small)))
                continue
            if target not in keys or (
                isinstance(operator, cst.FloorDivideAssign)
                and _SPLIT.search(module.code_for_node(value))
            ):
                continue
            rewrites.append(Rewrite(target, value, operator, conditions, line_of(small)))
    return tuple(rewrites), frozenset(ddp)


def _smalls(
    node: cst.CSTNode, conditions: tuple[Condition, ...]
) -> Iterator[tuple[cst.BaseSmallStatement, tuple[Condition, ...]]]:
    """The small statements of top-level code, of `with` and `try` bodies and of `if` branches
    (not loops, `except` clauses, functions: whether and how often they run is not read
    here)."""
    if isinstance(node, cst.SimpleStatementLine | cst.SimpleStatementSuite):
        for small in node.body:
            yield small, conditions
    elif isinstance(node, cst.With | cst.Try):  # the body runs once (a `try` as far as it gets)
        yield from _suite(node.body, conditions)
    elif isinstance(node, cst.If):
        yield from _suite(node.body, (*conditions, (node.test, True)))
        orelse = node.orelse
        negated = (*conditions, (node.test, False))
        if isinstance(orelse, cst.If):
            yield from _smalls(orelse, negated)
        elif isinstance(orelse, cst.Else):
            yield from _suite(orelse.body, negated)


def _suite(
    suite: cst.BaseSuite, conditions: tuple[Condition, ...]
) -> Iterator[tuple[cst.BaseSmallStatement, tuple[Condition, ...]]]:
    if isinstance(suite, cst.SimpleStatementSuite):
        yield from _smalls(suite, conditions)
        return
    for line in suite.body:
        yield from _smalls(line, conditions)


def _assignment(
    small: cst.BaseSmallStatement,
) -> tuple[str | None, cst.BaseExpression | None, cst.BaseAugOp | None]:
    if (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
    ):
        return small.targets[0].target.value, small.value, None
    if (  # `optimizer, lrs = build_optimizer(model)`
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Tuple)
        and isinstance(small.value, cst.Call)
    ):
        first = small.targets[0].target.elements[0].value
        if isinstance(first, cst.Name) and first.value == OPTIMIZER:
            return OPTIMIZER, small.value, None
    if isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name):
        return small.target.value, small.value, small.operator
    return None, None, None


def _model_assignment(small: cst.BaseSmallStatement) -> cst.Call | None:
    """The call of `model = X(...)` (`model = model = X(...)`, `model, optimizer, ... =
    X(...)`), else None."""
    if not isinstance(small, cst.Assign) or not isinstance(small.value, cst.Call):
        return None
    for assigned in small.targets:
        target: cst.BaseExpression = assigned.target
        if isinstance(target, cst.Tuple) and target.elements:
            target = target.elements[0].value
        if isinstance(target, cst.Name) and target.value == MODEL:
            return small.value
    return None


def apply(
    config: EffectiveConfig, world_size: int, only: frozenset[str]
) -> tuple[EffectiveConfig, tuple[str, ...]]:
    """`config` with the schema's rewrites of the keys in `only` applied where they evaluate
    (a DDP flag is `world_size > 1`), and the keys changed. A rewrite whose test or value
    cannot be evaluated leaves the key as it was."""
    schema = config.schema
    env = config.env()
    env.update(dict.fromkeys(schema.ddp_flags, world_size > 1))
    changed: dict[str, str] = {}
    for rewrite in schema.rewrites:
        if rewrite.key not in only or _holds(rewrite.conditions, env) is not True:
            continue
        value = evaluate(rewrite.value, env)
        if rewrite.operator is not None:
            value = apply_augmented(rewrite.operator, env.get(rewrite.key, UNKNOWN), value)
        if value is UNKNOWN or value == env.get(rewrite.key):
            continue
        env[rewrite.key] = value
        changed[rewrite.key] = f"{schema.origin}:{rewrite.line} after the configurator"
    for key, where in changed.items():
        config = config.with_value(key, env[key], where)
    return config, tuple(changed)


def other_optimizer(config: EffectiveConfig, world_size: int) -> str | None:
    """Where train.py builds, for this config, an optimizer that is not nanoGPT's AdamW
    (`model.configure_optimizers(...)`), or may build one behind a test static reading cannot
    evaluate: said with the line; None for AdamW."""
    schema = config.schema
    env = config.env()
    env.update(dict.fromkeys(schema.ddp_flags, world_size > 1))
    current: str | None = None
    for rewrite in schema.rewrites:
        if rewrite.key != OPTIMIZER:
            continue
        holds = _holds(rewrite.conditions, env)
        name = _called(rewrite.value)
        if name in _ADAMW:
            current = None if holds else current
        elif holds is not False:
            builds = "builds" if holds else MAY_BUILD
            current = (
                f"{schema.origin}:{rewrite.line} {builds} its optimizer with"
                f" `{name}(...)`, not nanoGPT's AdamW, whose state the estimate counts"
            )
    return current


def other_model(config: EffectiveConfig) -> str | None:
    """Where train.py builds, for this config, its model from something other than nanoGPT's
    GPT (`forkmodel.model_call`), or may (behind an `if` static reading cannot evaluate):
    said with the line; None for nanoGPT's GPT. A wrapper keeps the model it wraps."""
    schema = config.schema
    env = config.env()
    current: str | None = None
    for rewrite in schema.rewrites:
        if rewrite.key != MODEL or not isinstance(rewrite.value, cst.Call):
            continue
        holds = _holds(rewrite.conditions, env)
        func = rewrite.value.func
        receiver = None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            receiver = func.value.value
        takes = any(
            isinstance(arg.value, cst.Name) and arg.value.value == "model"
            for arg in rewrite.value.args
        )
        kind = model_call(_called(rewrite.value), receiver, takes)
        if holds is False or kind == "wraps":
            continue
        if kind == "gpt":
            current = None if holds else current
            continue
        shown = cst.Module([]).code_for_node(func)
        current = other_model_said(
            schema.origin, rewrite.line, shown, may=not holds, engine=kind == "engine"
        )
    return current


def _called(call: cst.BaseExpression) -> str:
    func = call.func if isinstance(call, cst.Call) else call
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else "?"


def _holds(conditions: tuple[Condition, ...], env: dict[str, Any]) -> bool | None:
    """Whether every test takes its branch: True, False, or None where one cannot be told."""
    for test, wanted in conditions:
        value = evaluate(test, env)
        if value is UNKNOWN:
            return None
        if bool(value) != wanted:
            return False
    return True
