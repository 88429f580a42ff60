"""The rule interface: a small class with its message, documentation, examples and a `check`
generator."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from gptlint.facts.kinds import FixSafety, Severity
from gptlint.lint.diagnostics import Edit, Fix, SpanEdit

if TYPE_CHECKING:
    from gptlint.lint.context import LintContext
    from gptlint.lint.scriptcontext import ScriptContext, Span


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
    spans: tuple[SpanEdit, ...] = ()  # a run script's fix (`ScriptRule`): text edits


@dataclass(frozen=True, eq=False)
class Violation:
    """What `Rule.check` yields: the node to point at, the message, and maybe a fix."""

    node: cst.CSTNode | None
    message: str
    fix: ProposedFix | None = None


@dataclass(frozen=True, eq=False)
class ScriptViolation:
    """What `ScriptRule.check_script` yields: where in the run script, the message, and maybe
    a fix (text edits: `ProposedFix.spans`)."""

    at: Span
    message: str
    fix: ProposedFix | None = None


_SECTIONS = ("Why:", "Fix safety:")
_FIX_SAFETY_LEAD = {
    FixSafety.SAFE: "Safe: `gptlint --fix` applies it.",
    FixSafety.UNSAFE: "Unsafe: only `gptlint --fix --unsafe-fixes` applies it.",
}


@dataclass(frozen=True)
class RuleDoc:
    """A rule's documentation in its fixed sections: what it checks, why, and its fix safety
    (led by the safety the rule declares). Its example is the rule's first INVALID one."""

    what: str
    why: str
    fix_safety: str

    @classmethod
    def parse(cls, docstring: str, safety: FixSafety | None) -> RuleDoc:
        """Read a rule docstring: what it checks, then a `Why:` and a `Fix safety:` line, each
        followed by its indented text. ValueError where it is not so."""
        parts: list[list[str]] = [[]]
        headers: list[str] = []
        for line in inspect.cleandoc(docstring).splitlines():
            if line in _SECTIONS:
                headers.append(line)
                parts.append([])
            elif line and len(parts) > 1 and not line.startswith("    "):
                raise ValueError(f"the text under {headers[-1]!r} is not indented: {line!r}")
            else:
                parts[-1].append(line)
        if tuple(headers) != _SECTIONS:
            raise ValueError(f"sections {headers} are not {list(_SECTIONS)}")
        what, why, fix = (textwrap.dedent("\n".join(part)).strip() for part in parts)
        if not (what and why and fix):
            raise ValueError("a section is empty")
        if (safety is None) != fix.startswith("No fix"):
            raise ValueError(f"the fix safety text does not fit fix_safety = {safety}: {fix!r}")
        lead = None if safety is None else _FIX_SAFETY_LEAD[safety]
        return cls(what, why, f"{lead}\n{fix}" if lead else fix)


class Rule:
    """Base class of every rule. Subclasses set the class attributes and implement `check`.

    The class docstring is the rule's documentation (`gptlint --explain CODE`, docs/rules.md):
    what it checks, then the sections `Why:` and `Fix safety:` (`RuleDoc.parse`); the fix
    safety text starts with "No fix" exactly when the rule declares no `fix_safety`.
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
    def fix_for(cls, violation: Violation | ScriptViolation) -> Fix | None:
        """The violation's fix as its diagnostic carries it: with the rule's declared safety.
        TypeError for a fix from a rule that declares none (a bug in the rule)."""
        proposed = violation.fix
        if proposed is None:
            return None
        if cls.fix_safety is None:
            raise TypeError(f"{cls.code} proposes a fix but declares no fix_safety")
        return Fix(proposed.description, proposed.edits, cls.fix_safety, proposed.spans)

    @classmethod
    def doc(cls) -> RuleDoc:
        """The rule's documentation, from its docstring (ValueError naming the rule where the
        docstring is not in its sections)."""
        try:
            return RuleDoc.parse(cls.__doc__ or "", cls.fix_safety)
        except ValueError as exc:
            raise ValueError(f"{cls.code} docstring: {exc}") from None

    @classmethod
    def explanation(cls) -> str:
        """The documentation as plain text (SARIF's rule help): what it checks, why, and the
        fix safety."""
        doc = cls.doc()
        return f"{doc.what}\n\nWhy:\n{doc.why}\n\nFix safety:\n{doc.fix_safety}"


@dataclass(frozen=True)
class ScriptExample:
    """A run script a `ScriptRule` must report, first at `line` and `col`, when it is
    `runs/example.sh` of a nanochat checkout, linted with `settings` (CLI flag names without
    their dashes: `gpu`, `memory_budget`)."""

    script: str
    settings: dict[str, Any] = field(default_factory=dict)
    line: int = field(kw_only=True)
    col: int = field(kw_only=True)


class ScriptRule(Rule):
    """A rule over a nanochat run script (`runs/*.sh`) rather than a config: it reports
    nothing on configs, and `check_script` looks at the script's invocations.

    Its examples are run scripts (`EXAMPLES`), which need a nanochat checkout around them:
    VALID/INVALID's runner lints a Python config alone, so they are shown as written, and
    tests/linter/test_nanochat_cli_rules.py runs each in a checkout written there."""

    EXAMPLES: ClassVar[tuple[ScriptExample, ...]] = ()

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        return iter(())

    def check_script(self, ctx: ScriptContext) -> Iterator[ScriptViolation]:
        raise NotImplementedError
