"""Lint (or fix) one file, in a worker process or in the run's own: what it came to, as plain
data (`FileResult`); nothing is printed or written here."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace

from gptlint.facts.kinds import Severity
from gptlint.lint.diagnostics import Diagnostic, Fix
from gptlint.lint.discover import Target
from gptlint.lint.edits import TextEdit, fix_edits
from gptlint.lint.fix import FixOutcome, fix_source
from gptlint.lint.linter import LintResult, lint_bytes
from gptlint.lint.scriptlint import (
    ScriptFix,
    ScriptResult,
    fix_script,
    is_run_script,
    lint_script,
    script_edits,
)
from gptlint.nanogpt.schema import SchemaError
from gptlint.output import WITH_EDITS
from gptlint.settings.table import Settings, SettingsError
from gptlint.text.decode import unread_reason
from gptlint.text.deep import run_deep
from gptlint.text.files import read_regular


@dataclass(frozen=True)
class Mode:
    """What the run does with each file beyond linting it."""

    fixing: bool  # --fix or --diff
    diff: bool
    unsafe: bool
    edits: bool  # the output shows each fix's text edits

    @classmethod
    def of(cls, args: argparse.Namespace) -> Mode:
        edits = args.output_format in WITH_EDITS and not (args.statistics or args.diff)
        return cls(bool(args.fix or args.diff), bool(args.diff), bool(args.unsafe_fixes), edits)


@dataclass
class FileResult:
    """What linting (or fixing) one file came to, as plain data: found in this process or in a
    worker process, it is reported alike, in the order the files were found. Nothing has been
    printed or written yet."""

    linted: bool = True  # False: found in a folder, and code rather than a config
    diagnostics: list[Diagnostic] = field(default_factory=list)
    edits: dict[Diagnostic, tuple[TextEdit, ...]] = field(default_factory=dict)
    would_change: bool = False
    diff: bytes | None = None  # --diff: the file's diff, for stdout
    fixed: bytes | None = None  # --fix: the file's new bytes, to write
    read: bytes | None = None  # --fix: the bytes they were made from (written only over them)
    applied: int = 0
    failure: str | None = None  # a bug in gptlint, reported with the file's name
    error: str | None = None  # bad input: a run script gptlint cannot read as nanochat's
    stop: Exception | None = None  # broken settings or train.py: the named path stops here


def lint_chunk(tasks: list[tuple[Target, Settings]], mode: Mode) -> list[FileResult]:
    """A worker's part of the run: each file's result (in one deep thread for all of them)."""
    return run_deep(lambda: [lint_target(target, settings, mode) for target, settings in tasks])


def lint_target(target: Target, settings: Settings | Exception, mode: Mode) -> FileResult:
    """Read and lint (or fix) one file; `settings` is the exception where its folder's
    settings are broken. Prints and writes nothing."""
    try:  # only regular files: a FIFO or /dev/zero (or a link to one) is named, never read
        raw = read_regular(target.path)
    except OSError as exc:
        return FileResult(diagnostics=[_unreadable(target, unread_reason(exc))])
    if isinstance(settings, Exception):
        return FileResult(stop=settings)
    try:  # run_deep: room for libcst and the evaluator to recurse as deep as a file nests
        return run_deep(_lint_or_fix, target, raw, settings, mode)
    except (SettingsError, SchemaError) as exc:
        return FileResult(stop=exc)
    except Exception as exc:  # a bug in gptlint: name the file, go on with the others
        if os.environ.get("GPTLINT_DEBUG"):
            raise
        return FileResult(failure=internal_error(target, exc))


def _unreadable(target: Target, message: str) -> Diagnostic:
    return Diagnostic("GPT000", Severity.ERROR, str(target.path), 1, 1, message)


def internal_error(target: Target, exc: Exception) -> str:
    """The message for a bug in gptlint met while linting `target`."""
    return (
        f"{target.path}: internal error: {type(exc).__name__}: {exc}"
        " (please report it; GPTLINT_DEBUG=1 shows the traceback)"
    )


def _lint_or_fix(target: Target, raw: bytes, settings: Settings, mode: Mode) -> FileResult:
    if is_run_script(target.path):
        return _lint_or_fix_script(target, raw, settings, mode)
    result = lint_bytes(str(target.path), raw, settings, configs_only=not target.explicit)
    if result.skipped:
        return FileResult(linted=False)
    if result.file is None or not mode.fixing:
        return found_in(result, mode)
    outcome = fix_source(result.file.source, settings, mode.unsafe, result=result)
    return _with_fixes(found_in(outcome.remaining, mode), outcome, target, raw, mode)


def _lint_or_fix_script(target: Target, raw: bytes, settings: Settings, mode: Mode) -> FileResult:
    result = lint_script(str(target.path), raw, settings, scripts_only=not target.explicit)
    if result.skipped:
        return FileResult(linted=False)
    if result.error is not None:
        return FileResult(error=result.error)
    if not mode.fixing:
        return script_found(result, mode)
    outcome = fix_script(result, raw, settings, mode.unsafe)
    return _with_fixes(script_found(outcome.remaining, mode), outcome, target, raw, mode)


def _with_fixes(
    found: FileResult, outcome: FixOutcome | ScriptFix, target: Target, raw: bytes, mode: Mode
) -> FileResult:
    """`found` with what the fixes changed: the diff (`--diff`), or the new bytes to write over
    the `raw` bytes they were made from."""
    if outcome.changed:
        found.would_change = True
        if mode.diff:
            found.diff = outcome.diff(str(target.path))
        else:
            found.fixed, found.applied, found.read = outcome.fixed, outcome.applied, raw
    return found


def script_found(result: ScriptResult, mode: Mode) -> FileResult:
    """A run script's diagnostics, with their fixes' text edits where the output shows them."""
    edits = script_edits(result) if mode.edits else {}
    return FileResult(diagnostics=list(result.diagnostics), edits=edits)


def found_in(result: LintResult, mode: Mode) -> FileResult:
    """A file's diagnostics, with their fixes' text edits where the output shows them; each
    fix is kept as what the output shows of it (its rewrites hold the file's tree)."""
    edits = fix_edits(result) if mode.edits else {}
    return FileResult(
        diagnostics=[_shown(d) for d in result.diagnostics],
        edits={_shown(d): e for d, e in edits.items()},
    )


def _shown(diagnostic: Diagnostic) -> Diagnostic:
    fix = diagnostic.fix
    if fix is None or not fix.edits:
        return diagnostic
    return replace(diagnostic, fix=Fix(fix.description, (), fix.safety))
