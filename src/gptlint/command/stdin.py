"""`gptlint -`: lint (or fix) the file read from stdin, as `--stdin-filename` names it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gptlint.command.lintfile import FileResult, Mode, found_in, script_found
from gptlint.command.plan import FolderSettings
from gptlint.command.report import Report, finish, write_bytes
from gptlint.lint.fix import FixOutcome, fix_source
from gptlint.lint.linter import lint_bytes
from gptlint.lint.scriptlint import ScriptFix, fix_script, is_run_script, lint_script
from gptlint.settings.table import Settings


def run_stdin(args: argparse.Namespace, folders: FolderSettings) -> int:
    """Lint stdin. With `--fix` the (fixed) file goes to stdout, unchanged where nothing could be
    fixed, and the report to stderr; with `--diff` the diff goes to stdout."""
    mode, report = Mode.of(args), Report()
    name = args.stdin_filename or "-"
    anchor = Path(name).absolute() if args.stdin_filename else Path.cwd() / "-"
    settings = folders.settings_for(anchor.parent)
    raw = sys.stdin.buffer.read()
    if is_run_script(name):
        return _run_script(args, mode, report, name, anchor, raw, settings)
    result = lint_bytes(name, raw, settings, schema_path=anchor)
    fixed = raw
    if result.file is None or not mode.fixing:
        report.add(found_in(result, mode))
    else:
        outcome = fix_source(result.file.source, settings, args.unsafe_fixes, anchor, result)
        fixed = _fixes(args, report, outcome, found_in(outcome.remaining, mode), name)
    return _done(args, report, fixed)


def _run_script(
    args: argparse.Namespace,
    mode: Mode,
    report: Report,
    name: str,
    anchor: Path,
    raw: bytes,
    settings: Settings,
) -> int:
    """A run script on stdin (`--stdin-filename x.sh`): its checkout is looked for above the
    name it is given; fixed and reported as `run_stdin` does a config."""
    result = lint_script(name, raw, settings, anchor)
    fixed = raw
    if result.error is not None:
        report.error(result.error)
    elif not mode.fixing:
        report.add(script_found(result, mode))
    else:
        outcome = fix_script(result, raw, settings, args.unsafe_fixes, anchor)
        fixed = _fixes(args, report, outcome, script_found(outcome.remaining, mode), name)
    return _done(args, report, fixed)


def _fixes(
    args: argparse.Namespace,
    report: Report,
    outcome: FixOutcome | ScriptFix,
    found: FileResult,
    name: str,
) -> bytes:
    """Report what the fixes left (`found`) and changed (the diff goes to stdout under
    `--diff`); the fixed bytes."""
    report.add(found)
    report.would_change = outcome.changed
    if args.diff:
        write_bytes(outcome.diff(name))
    else:
        report.fixed = outcome.applied
    return outcome.fixed


def _done(args: argparse.Namespace, report: Report, fixed: bytes) -> int:
    """With `--fix`, the file to stdout and the report to stderr; else the report."""
    if args.fix and not args.diff:
        write_bytes(fixed)
        return finish(args, report, stream=sys.stderr)
    return finish(args, report)
