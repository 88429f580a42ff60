"""`gptlint -`: lint (or fix) the file read from stdin, as `--stdin-filename` names it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gptlint.command.lintfile import Mode, found_in
from gptlint.command.plan import FolderSettings
from gptlint.command.report import Report, finish, write_bytes
from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_bytes


def run_stdin(args: argparse.Namespace, folders: FolderSettings) -> int:
    """Lint stdin. With `--fix` the (fixed) file goes to stdout, unchanged where nothing could be
    fixed, and the report to stderr; with `--diff` the diff goes to stdout."""
    mode, report = Mode.of(args), Report()
    name = args.stdin_filename or "-"
    anchor = Path(name).absolute() if args.stdin_filename else Path.cwd() / "-"
    settings = folders.settings_for(anchor.parent)
    raw = sys.stdin.buffer.read()
    result = lint_bytes(name, raw, settings, schema_path=anchor)
    fixed = raw
    if result.file is None or not mode.fixing:
        report.add(found_in(result, mode))
    else:
        outcome = fix_source(result.file.source, settings, args.unsafe_fixes, anchor, result)
        report.add(found_in(outcome.remaining, mode))
        report.would_change = outcome.changed
        fixed = outcome.fixed
        if args.diff:
            write_bytes(outcome.diff(name))
        else:
            report.fixed = outcome.applied
    if args.fix and not args.diff:
        write_bytes(fixed)
        return finish(args, report, stream=sys.stderr)
    return finish(args, report)
