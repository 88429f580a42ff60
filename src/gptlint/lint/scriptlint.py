"""Linting (and fixing) one nanochat run script: read its invocations, find the checkout around
it, run the enabled run-script rules (GPT6xx), drop `# noqa`'d findings; fixes are text edits
(`SpanEdit`), applied over the script's text so that every other byte stays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gptlint.lint.diagnostics import Diagnostic, escape_path
from gptlint.lint.edits import TextEdit, text_edits
from gptlint.lint.fix import MAX_PASSES, applicable, unified_diff
from gptlint.lint.noqa import script_suppressed
from gptlint.lint.rules import RULES_BY_CODE, enabled_codes
from gptlint.lint.rules.base import ScriptRule, ScriptViolation
from gptlint.lint.scriptcontext import ScriptContext
from gptlint.nanochat.checkout import MARKERS, find_checkout
from gptlint.nanochat.runscript import given_variables, read_invocations
from gptlint.runmodel.chatrun import SCRIPTS
from gptlint.settings.table import Settings
from gptlint.text.decode import MAX_SOURCE_BYTES

SCRIPT_SUFFIX = ".sh"


def is_run_script(path: Path | str) -> bool:
    """Whether gptlint reads `path` as a run script (a `.sh` file) rather than a config."""
    return str(path).endswith(SCRIPT_SUFFIX)


@dataclass
class ScriptResult:
    """A run script's lint: its text and diagnostics; `skipped` where it was found in a folder
    and is no nanochat run script; `error` where it cannot be read as one (exit 2)."""

    path: str
    text: str = ""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    skipped: bool = False
    error: str | None = None


def lint_script(
    path: str,
    raw: bytes,
    settings: Settings,
    anchor: Path | None = None,
    scripts_only: bool = False,
) -> ScriptResult:
    """Lint a run script's bytes; the checkout is looked for above `anchor` (default: `path`).
    With `scripts_only` (found in a folder), a script that runs no nanochat step or has no
    checkout above it is skipped rather than reported."""
    shown = escape_path(path)
    text = _decoded(raw)
    if isinstance(text, ValueError):
        if scripts_only:
            return ScriptResult(path, skipped=True)
        return ScriptResult(path, error=f"{shown}: cannot read the run script: {text}")
    try:
        given = given_variables(settings.overrides)
    except ValueError as exc:
        return ScriptResult(path, text, error=f"{shown}: {exc}")
    invocations = read_invocations(text, given)
    run = sorted({i.script for i in invocations if i.script in SCRIPTS})
    if not run:
        return ScriptResult(path, text, skipped=scripts_only)
    checkout = find_checkout(anchor or Path(path))
    if checkout is None:
        if scripts_only:
            return ScriptResult(path, text, skipped=True)
        markers = " and ".join(MARKERS)
        return ScriptResult(
            path,
            text,
            error=f"{shown}: runs nanochat's {', '.join(run)}, but no nanochat checkout (a folder "
            f"with {markers}) is at or above it: its flags' defaults cannot be read",
        )
    ctx = ScriptContext(path, text, invocations, checkout, settings)
    lines = text.split("\n")
    diagnostics = []
    for code in sorted(enabled_codes(settings.select, settings.ignore)):
        rule = RULES_BY_CODE[code]
        if issubclass(rule, ScriptRule):
            for violation in rule().check_script(ctx):
                if not script_suppressed(lines, violation.at.line, code):
                    diagnostics.append(_diagnostic(path, rule, violation))
    diagnostics.sort(key=lambda d: (d.line, d.col, d.code))
    return ScriptResult(path, text, diagnostics)


def _decoded(raw: bytes) -> str | ValueError:
    if len(raw) > MAX_SOURCE_BYTES:
        return ValueError(f"{len(raw)} bytes, over the {MAX_SOURCE_BYTES} gptlint reads")
    if b"\x00" in raw:
        return ValueError("binary file (contains a NUL byte)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return ValueError(f"line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8")


def _diagnostic(path: str, rule: type[ScriptRule], violation: ScriptViolation) -> Diagnostic:
    at = violation.at
    return Diagnostic(
        rule.code,
        rule.severity,
        path,
        at.line,
        at.col,
        violation.message,
        at.end_line,
        at.end_col,
        rule.fix_for(violation),
    )


def apply_spans(text: str, chosen: list[Diagnostic]) -> str:
    """`text` with the span edits of `chosen`'s fixes applied (from the end backwards, so the
    offsets of the earlier ones hold); every other character stays."""
    spans = sorted(
        (span for d in chosen if d.fix is not None for span in d.fix.spans),
        key=lambda span: (span.start, span.end),
        reverse=True,
    )
    for span in spans:
        text = text[: span.start] + span.content + text[span.end :]
    return text


def _chosen(diagnostics: list[Diagnostic], unsafe: bool) -> list[Diagnostic]:
    """The fixes one pass applies: applicable ones whose spans overlap no earlier one's."""
    taken: list[tuple[int, int]] = []
    chosen = []
    for diagnostic in diagnostics:
        if diagnostic.fix is None or not diagnostic.fix.spans or not applicable(diagnostic, unsafe):
            continue
        spans = [(s.start, s.end) for s in diagnostic.fix.spans]
        if any(a <= d and c <= b for a, b in spans for c, d in taken):
            continue
        taken += spans
        chosen.append(diagnostic)
    return chosen


@dataclass
class ScriptFix:
    """A run script after fixing: its new bytes, the fixes applied, what remains."""

    raw: bytes
    fixed: bytes
    applied: int
    remaining: ScriptResult

    @property
    def changed(self) -> bool:
        return self.fixed != self.raw

    def diff(self, name: str) -> bytes:
        return unified_diff(name, self.raw, self.fixed, "utf-8")


def fix_script(
    result: ScriptResult, raw: bytes, settings: Settings, unsafe: bool, anchor: Path | None = None
) -> ScriptFix:
    """Apply the script's fixes, linting it again after each pass (at most MAX_PASSES)."""
    applied = 0
    for _ in range(MAX_PASSES):
        chosen = _chosen(result.diagnostics, unsafe)
        if result.error is not None or not chosen:
            break
        text = apply_spans(result.text, chosen)
        if text == result.text:
            break
        result = lint_script(result.path, text.encode("utf-8"), settings, anchor)
        applied += len(chosen)
    fixed = result.text.encode("utf-8") if applied else raw
    return ScriptFix(raw, fixed, applied, result)


def script_edits(result: ScriptResult) -> dict[Diagnostic, tuple[TextEdit, ...]]:
    """Each fix's text edits (for JSON and SARIF), found as for configs: the one fix applied
    alone and the result diffed against the script."""
    return {
        d: text_edits(result.text, apply_spans(result.text, [d]))
        for d in result.diagnostics
        if d.fix is not None and d.fix.spans
    }
