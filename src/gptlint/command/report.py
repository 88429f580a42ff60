"""The run's report: each file's result taken in the order the files were found (its findings
kept, its diff printed, its fix written), then the findings printed in the chosen format, and
the exit code."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TextIO

from gptlint.command.lintfile import FileResult
from gptlint.facts.exitcodes import ExitCode
from gptlint.lint.diagnostics import Diagnostic, escape_path
from gptlint.lint.discover import Target
from gptlint.lint.edits import TextEdit
from gptlint.output import FORMATS, statistics
from gptlint.output import text as text_output
from gptlint.text.write import write_atomically


@dataclass
class Report:
    """What the run found, across files. `errors` means exit 2: a path, file or write failed."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    edits: dict[Diagnostic, tuple[TextEdit, ...]] = field(default_factory=dict)  # WITH_EDITS
    fixed: int = 0
    would_change: bool = False
    errors: bool = False

    def error(self, message: str) -> None:
        print(f"gptlint: error: {message}", file=sys.stderr)
        self.errors = True

    def note(self, message: str) -> None:
        """Say something the run did besides its findings (no change to the exit code)."""
        print(f"gptlint: {message}", file=sys.stderr)

    def add(self, found: FileResult) -> None:
        """Add a file's diagnostics and their fixes' text edits (`lintfile.found_in`)."""
        self.diagnostics.extend(found.diagnostics)
        self.edits.update(found.edits)


def report_file(report: Report, target: Target, result: FileResult) -> bool:
    """Report one file's result and write its fix, in the run's order; False where the file
    was skipped as not being a config."""
    if result.stop is not None:
        raise result.stop
    if result.failure is not None:
        report.error(result.failure)
        return True
    if result.error is not None:
        report.error(result.error)
        return True
    if not result.linted:
        return False
    report.add(result)
    if result.would_change:
        report.would_change = True
    if result.diff is not None:
        write_bytes(result.diff)
    elif result.fixed is not None:
        try:
            removed = write_atomically(target.path, result.fixed, result.read)
        except OSError as exc:
            report.error(f"{target.path}: cannot write the fixed file: {exc.strerror or exc}")
            return True
        report.fixed += result.applied
        for name in removed:
            shown = escape_path(str(target.path))
            report.note(
                f"{shown}: removed {escape_path(name)}, left by an interrupted gptlint --fix"
            )
    return True


def write_bytes(data: bytes) -> None:
    """Write a file's bytes (a diff, a fixed file) to stdout, after any text already there."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def finish(args: argparse.Namespace, report: Report, stream: TextIO | None = None) -> int:
    """Print the report (to `stream`, else stdout) as the options ask; the exit code."""
    out = stream or sys.stdout
    diagnostics = report.diagnostics
    errors = report.errors or any(d.code == "GPT000" for d in diagnostics)
    if args.diff:
        for d in diagnostics:
            if d.code == "GPT000":
                print(d, file=sys.stderr)
        if errors:
            return ExitCode.ERROR
        return ExitCode.FOUND if report.would_change and not args.exit_zero else ExitCode.CLEAN
    if args.statistics:
        out.write(statistics(args.output_format, diagnostics))
    elif args.output_format == "text":
        out.write(text_output.render(diagnostics))
        if diagnostics or report.fixed or not report.errors:
            out.write(text_output.summary(diagnostics, report.fixed, args.unsafe_fixes))
    else:
        out.write(FORMATS[args.output_format](diagnostics, report.edits))
    out.flush()
    if errors:
        return ExitCode.ERROR
    if diagnostics and not args.exit_zero:
        return ExitCode.FOUND
    return ExitCode.CLEAN
