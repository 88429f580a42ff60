"""What a rule reports: a Diagnostic with its position, message and optional Fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst

from gptlint.facts.kinds import FixSafety, Severity

Rewrite = Callable[
    [cst.CSTNode], "cst.CSTNode | cst.FlattenSentinel[cst.CSTNode] | cst.RemovalSentinel"
]


@dataclass(frozen=True, eq=False)
class Edit:
    """Rewrite the node `old` of the file's tree: `rewrite` gets the node as other edits left
    it and returns its replacement (a `cst.FlattenSentinel` inserts statements beside it)."""

    old: cst.CSTNode
    rewrite: Rewrite


@dataclass(frozen=True)
class SpanEdit:
    """Replace the characters `start` up to, not including, `end` of a file's text with
    `content` (equal offsets insert it): a fix of a file that has no libcst tree (a run
    script), applied by `lint.scriptfix.apply_spans`."""

    start: int
    end: int
    content: str


@dataclass(frozen=True, eq=False)
class Fix:
    """A rewrite that resolves a diagnostic. `safety` is SAFE or UNSAFE (Ruff's sense:
    unsafe fixes may change what the run does beyond the reported problem), and always its
    rule's declared `fix_safety`: a rule proposes edits without a safety (`ProposedFix`) and
    the linter makes them a Fix with the rule's (`Rule.fix_for`)."""

    description: str
    edits: tuple[Edit, ...]
    safety: FixSafety
    spans: tuple[SpanEdit, ...] = ()  # a run script's fix: text edits, no tree


@dataclass(frozen=True)
class Diagnostic:
    """One finding, located with 1-based line and column."""

    code: str
    severity: Severity
    path: str
    line: int
    col: int
    message: str
    end_line: int = 0
    end_col: int = 0
    fix: Fix | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{escape_path(self.path)}:{self.line}:{self.col}: {self.code} {self.message}"


def escape_path(name: str) -> str:
    """`name` for a one-line message: control characters (a newline in a file name) and bytes
    that are not UTF-8 escaped as Python writes them in a string."""
    if name.isprintable():
        return name
    return (
        name.encode("utf-8", "surrogateescape")
        .decode("utf-8", "backslashreplace")
        .encode("unicode_escape")
        .decode("ascii")
        .replace("\\\\x", "\\x")
    )
