"""GPT106: values that nanoGPT (or PyTorch under it) cannot run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import libcst as cst

from gptlint.facts.kinds import Severity, ValueKind
from gptlint.facts.values import UNKNOWN
from gptlint.lint.context import LintContext
from gptlint.lint.rules.base import Invalid, Rule, Valid, Violation
from gptlint.lint.rules.common import is_number
from gptlint.lint.scopes import CallScope
from gptlint.nanogpt.rejects import (
    ADAMW_RANGES,
    MODULO_KEYS,
    PLAUSIBLE,
    SIZE_KEYS,
    adamw_rejects,
    dropout_rejected,
    show,
)


def problem(key: str, value: Any) -> str | None:
    """Why `key = value` cannot run (`gptlint.nanogpt.rejects`), or None."""
    if not is_number(value):
        return None
    if key in SIZE_KEYS:
        use = SIZE_KEYS[key]
        if isinstance(value, float):
            return (
                f"{key}={value!r} is a float: {use}, which needs an int (TypeError);"
                f" write {int(value)}"
                if value.is_integer()
                else f"{key}={value!r} is a float: {use}, which needs an int (TypeError)"
            )
        if value < 1:
            return f"{key}={show(value)} must be at least 1: {use}"
        if value >= PLAUSIBLE:
            return (
                f"{key}={show(value)} is implausibly large (10**15 or more): {use},"
                " and nothing that size can be built or run"
            )
    if key in MODULO_KEYS and value == 0:
        return f"{key}=0: train.py computes `iter_num % {key}`, a ZeroDivisionError at iteration 0"
    if key == "dropout" and dropout_rejected(value):
        return (
            f"dropout={value} is outside [0, 1): nn.Dropout raises ValueError outside [0, 1],"
            " and 1 zeroes every activation"
        )
    if key in ADAMW_RANGES and adamw_rejects(key, value):
        accepted = ADAMW_RANGES[key]
        low, high = accepted.low, accepted.high
        bounds = f"[{low:g}, {high:g})" if high is not None else f">= {low:g}"
        return (
            f"{key}={value} is outside {bounds}: AdamW raises ValueError('{accepted.error}') when"
            " train.py builds the optimizer"
        )
    return None


class ImpossibleValue(Rule):
    """A value nanoGPT cannot train with: a size or count below 1 or written as a float
    (`batch_size = 12.0` fails in `torch.randint`, `n_layer = 6.0` in `range()`), a size or
    count of 10**15 or more (`n_embd = 2**63`: nothing that size can be built or run, and
    the other rules skip such sizes rather than compute with them), a zero `eval_interval` or
    `log_interval` (`iter_num % 0`), dropout outside [0, 1) (nn.Dropout rejects it; 1 zeroes
    everything), or an optimizer setting AdamW rejects (negative learning_rate or
    weight_decay, beta1/beta2 outside [0, 1)). These crash the run, most of them after the
    data has loaded. The same checks apply to `GPTConfig(...)` arguments.
    No fix: the intended value is not known.
    """

    code = "GPT106"
    name = "impossible-value"
    severity = Severity.ERROR
    summary = (
        "impossible value: non-positive size or count, float where int, dropout outside [0, 1)"
    )
    VALID = (
        Valid("batch_size = 12\ndropout = 0.1\n"),
        Valid("learning_rate = 0.0\nbeta2 = 0.99\n"),
        Valid("max_iters = 0\n"),
    )
    INVALID = (
        Invalid("batch_size = 0\n", message="batch_size=0 must be at least 1"),
        Invalid("n_layer = 6.0\n", message="n_layer=6.0 is a float"),
        Invalid("dropout = 1.0\n", message="dropout=1.0 is outside [0, 1)"),
        Invalid("eval_interval = 0\n", message="ZeroDivisionError"),
        Invalid("beta2 = 1.0\n", message="Invalid beta parameter at index 1"),
        Invalid("cfg = GPTConfig(n_layer=-1)\n", message="n_layer=-1 must be at least 1"),
        Invalid("n_embd = 2**63\n", message="n_embd=9223372036854775808 is implausibly large"),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for key in dict.fromkeys(a.key for a in ctx.file.assignments):
            resolved = ctx.config.resolved(key)
            if resolved is None or resolved.kind != ValueKind.FILE or resolved.assignment is None:
                continue
            message = problem(key, resolved.value)
            if message is not None:
                yield Violation(resolved.assignment.target, message)
        for scope in ctx.shape_scopes:
            if isinstance(scope, CallScope):
                yield from self._call(scope)

    def _call(self, scope: CallScope) -> Iterator[Violation]:
        for key, (_, node) in scope.call.args.items():
            value = scope.value(key)
            message = None if value is UNKNOWN else problem(key, value)
            if message is not None and isinstance(node, cst.CSTNode):
                yield Violation(node, message)


RULES = [ImpossibleValue]
