"""The rule interface: a small class with its message, examples and a `check` generator."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from gptlint.facts.kinds import FixSafety, Severity
from gptlint.lint.diagnostics import Edit, Fix

if TYPE_CHECKING:
    from gptlint.lint.context import LintContext


@dataclass(frozen=True)
class Valid:
    """A config the rule must accept."""

    code: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    """A config the rule must report, first at `line` and `col` (1-based, as the output shows
    them); `expected_fix` is the file after `--fix` (None: no fix), `message` a substring the
    message must contain."""

    code: str
    expected_fix: str | None = None
    message: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    unsafe_fixes: bool = False
    line: int = field(kw_only=True)
    col: int = field(kw_only=True)


@dataclass(frozen=True, eq=False)
class ProposedFix:
    """The fix a violation proposes: what it does and its edits. It has no safety of its own:
    the rule declares one (`Rule.fix_safety`) for all its fixes."""

    description: str
    edits: tuple[Edit, ...]


@dataclass(frozen=True, eq=False)
class Violation:
    """What `Rule.check` yields: the node to point at, the message, and maybe a fix."""

    node: cst.CSTNode | None
    message: str
    fix: ProposedFix | None = None


class Rule:
    """Base class of every rule. Subclasses set the class attributes and implement `check`.

    The class docstring is the rule's long explanation (`gptlint --explain CODE`, docs).
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    fix_safety: ClassVar[FixSafety | None] = None
    """The safety of every fix the rule proposes (None: it proposes none). A rule whose fixes
    differ in safety would be two rules: plain `--fix` must never apply an unsafe one."""
    default_enabled: ClassVar[bool] = True
    VALID: ClassVar[tuple[Valid, ...]] = ()
    INVALID: ClassVar[tuple[Invalid, ...]] = ()

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        raise NotImplementedError

    @classmethod
    def fix_for(cls, violation: Violation) -> Fix | None:
        """The violation's fix as its diagnostic carries it: with the rule's declared safety.
        TypeError for a fix from a rule that declares none (a bug in the rule)."""
        proposed = violation.fix
        if proposed is None:
            return None
        if cls.fix_safety is None:
            raise TypeError(f"{cls.code} proposes a fix but declares no fix_safety")
        return Fix(proposed.description, proposed.edits, cls.fix_safety)

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or cls.summary)
