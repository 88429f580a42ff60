"""Small helpers the rule families share."""

from __future__ import annotations

from typing import TypeGuard

import libcst as cst

from gptlint.lint.context import LintContext
from gptlint.nanogpt.rejects import PLAUSIBLE


def positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def plausible(value: object) -> bool:
    """A finite number of plausible size (False for inf, nan, 10 ** 400)."""
    return is_number(value) and abs(value) < PLAUSIBLE


def plausible_int(value: object) -> bool:
    """A positive int of plausible size (below `gptlint.nanogpt.rejects.PLAUSIBLE`)."""
    return positive_int(value) and value < PLAUSIBLE


def target(ctx: LintContext, key: str) -> cst.CSTNode | None:
    """The name in the assignment that gives `key` its value, if the file assigns it."""
    resolved = ctx.config.resolved(key)
    if resolved is None or resolved.assignment is None:
        return None
    return resolved.assignment.target


def latest(ctx: LintContext, *keys: str) -> cst.CSTNode | None:
    """The target of whichever of `keys` the file assigns last (None if it sets none)."""
    assigned = [ctx.config.resolved(k) for k in keys]
    found = [r.assignment for r in assigned if r is not None and r.assignment is not None]
    return max(found, key=lambda a: a.index).target if found else None
