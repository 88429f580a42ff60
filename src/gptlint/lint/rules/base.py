"""The rule interface: a small class with its message, examples and a `check` generator."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from gptlint.facts.kinds import FixSafety, Severity
from gptlint.lint.diagnostics import Fix

if TYPE_CHECKING:
    from gptlint.lint.context import LintContext


@dataclass(frozen=True)
class Valid:
    """A config the rule must accept."""

    code: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    """A config the rule must report; `expected_fix` is the file after `--fix` (None: no fix),
    `message` a substring the message must contain."""

    code: str
    expected_fix: str | None = None
    message: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    unsafe_fixes: bool = False


@dataclass(frozen=True, eq=False)
class Violation:
    """What `Rule.check` yields: the node to point at, the message, and maybe a fix."""

    node: cst.CSTNode | None
    message: str
    fix: Fix | None = None


class Rule:
    """Base class of every rule. Subclasses set the class attributes and implement `check`.

    The class docstring is the rule's long explanation (`gptlint --explain CODE`, docs).
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    fix_safety: ClassVar[FixSafety | None] = None
    default_enabled: ClassVar[bool] = True
    VALID: ClassVar[tuple[Valid, ...]] = ()
    INVALID: ClassVar[tuple[Invalid, ...]] = ()

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        raise NotImplementedError

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or cls.summary)
