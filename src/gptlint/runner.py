"""What one `gptlint` invocation does: gather files, lint or fix each, print, pick the exit code."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from gptlint.diagnostics import Diagnostic, escape_path
from gptlint.discover import Target, excluded, walk
from gptlint.exitcodes import ExitCode
from gptlint.fix import fix_source, write_atomically
from gptlint.kinds import FixSafety, Severity
from gptlint.lint import LintResult, lint_bytes
from gptlint.output import FORMATS, WITH_EDITS, fix_edits, statistics
from gptlint.output import text as text_output
from gptlint.pyproject import convert, load_settings
from gptlint.rules import ALL_RULES, RULES_BY_CODE
from gptlint.schema import SchemaError
from gptlint.settings import SETTINGS, Settings, SettingsError
from gptlint.source import read_regular, run_deep


@dataclass
class Report:
    """What the run found, across files. `errors` means exit 2: a path, file or write failed."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    edits: dict = field(default_factory=dict)  # each fix's text edits, for WITH_EDITS formats
    fixed: int = 0
    would_change: bool = False
    errors: bool = False

    def error(self, message: str) -> None:
        print(f"gptlint: error: {message}", file=sys.stderr)
        self.errors = True


class Invocation:
    """One `gptlint` invocation: its options, its report so far, the files already seen, and
    the settings of each folder, looked up once."""

    def __init__(self, args: argparse.Namespace, overrides: dict) -> None:
        self.args = args
        self.overrides = overrides
        self.report = Report()
        self.seen: set[str] = set()
        self._settings: dict[Path, Settings] = {}

    @property
    def fixing(self) -> bool:
        return bool(self.args.fix or self.args.diff)

    def settings_for(self, folder: Path) -> Settings:
        """`[tool.gptlint]` from the nearest pyproject.toml above `folder`, CLI values on top."""
        if folder not in self._settings:
            self._settings[folder] = load_settings(folder).merged(self.overrides)
        return self._settings[folder]


def run(args: argparse.Namespace) -> int:
    if args.list_rules:
        print(_rule_table(), end="")
        return ExitCode.CLEAN
    if args.explain:
        return _explain(args.explain)
    if args.output_format not in FORMATS:
        known = ", ".join(FORMATS)
        return _fail(f"unknown output format {args.output_format!r} (choose from {known})")
    try:
        current = Invocation(args, _cli_settings(args))
        paths = args.paths or (["-"] if args.stdin_filename else ["."])
        if "-" in paths:
            if len(paths) > 1:
                return _fail("'-' (stdin) cannot be combined with other paths")
            return run_deep(_run_stdin, current)
        # One deep thread for the whole run (each file's own run_deep then runs inline): a
        # thread per file cost a third of the time on a folder of small configs.
        return run_deep(_run_paths, current, paths)
    except (SettingsError, SchemaError) as exc:
        return _fail(str(exc))


def _fail(message: str) -> int:
    print(f"gptlint: error: {message}", file=sys.stderr)
    return ExitCode.ERROR


def _cli_settings(args: argparse.Namespace) -> dict:
    values = {}
    for spec in SETTINGS:
        raw = getattr(args, spec.name)
        if raw is None:
            continue
        try:
            values[spec.name] = convert(spec, raw, Path.cwd())
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{spec.cli_flag}: {exc}") from None
    return values


def _run_paths(current: Invocation, paths: list[str]) -> int:

    def folder_error(exc: OSError) -> None:
        where = escape_path(str(exc.filename or ""))
        current.report.error(f"{where}: cannot read folder: {exc.strerror or exc}")

    for name in paths:
        try:  # broken settings of one named path stop that path, not the others
            _run_path(current, name, folder_error)
        except (SettingsError, SchemaError) as exc:
            current.report.error(str(exc))
    return _finish(current)


def _run_path(current: Invocation, name: str, folder_error: Callable[[OSError], None]) -> None:
    """Lint (or fix) one named file, or the configs in one named folder."""
    shown = escape_path(name)
    if not name:
        current.report.error("'': an empty path names no file or folder")
        return
    path = Path(name)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            current.report.error(f"{shown}: no such file or directory")
        else:
            current.report.error(f"{shown}: {exc.strerror or exc}")
        return
    if stat.S_ISDIR(mode):
        settings = current.settings_for(path)
        found = walk(path, settings.exclude, settings.root, folder_error)
        if not sum(_process(current, Target(p, False)) for p in found):
            current.report.error(f"{shown}: no config files found")
        return
    if not stat.S_ISREG(mode):
        current.report.error(f"{shown}: not a regular file or folder, skipped")
        return
    settings = current.settings_for(path.parent)
    if not excluded(path, settings.exclude, settings.root):
        _process(current, Target(path, True))


def _process(current: Invocation, target: Target) -> bool:
    """Lint (or fix) one file; False if it was skipped as not being a config. A failure in one
    file is reported and the run goes on with the next."""

    report = current.report
    key = os.path.abspath(target.path)
    if key in current.seen:  # named twice, or named and inside a named folder
        return True
    current.seen.add(key)
    try:  # only regular files: a FIFO or /dev/zero (or a link to one) is named, never read
        raw = read_regular(target.path)
    except OSError as exc:
        report.diagnostics.append(
            Diagnostic(
                "GPT000",
                Severity.ERROR,
                str(target.path),
                1,
                1,
                f"cannot read file: {exc.strerror or exc}",
            )
        )
        return True
    try:  # run_deep: room for libcst and the evaluator to recurse as deep as a file nests
        return run_deep(_lint_or_fix, current, target, raw)
    except (SettingsError, SchemaError, BrokenPipeError):
        raise
    except Exception as exc:  # a bug in gptlint: name the file, go on with the others
        if os.environ.get("GPTLINT_DEBUG"):
            raise
        report.error(
            f"{target.path}: internal error: {type(exc).__name__}: {exc}"
            " (please report it; GPTLINT_DEBUG=1 shows the traceback)"
        )
        return True


def _lint_or_fix(current: Invocation, target: Target, raw: bytes) -> bool:
    settings = current.settings_for(target.path.parent)
    result = lint_bytes(str(target.path), raw, settings, configs_only=not target.explicit)
    if result.skipped:
        return False
    if result.unreadable or not current.fixing:
        _found(current, result)
        return True
    outcome = fix_source(result.file.source, settings, current.args.unsafe_fixes, result=result)
    _found(current, outcome.remaining)
    if not outcome.changed:
        return True
    current.report.would_change = True
    if current.args.diff:
        _write_bytes(outcome.diff(str(target.path)))
        return True
    try:
        write_atomically(target.path, outcome.fixed)
    except OSError as exc:
        current.report.error(f"{target.path}: cannot write the fixed file: {exc.strerror or exc}")
        return True
    current.report.fixed += outcome.applied
    return True


def _found(current: Invocation, result: LintResult) -> None:
    """Report a file's diagnostics, with its fixes' text edits where the output shows them."""
    current.report.diagnostics.extend(result.diagnostics)
    args = current.args
    if args.output_format in WITH_EDITS and not (args.statistics or args.diff):
        current.report.edits.update(fix_edits(result))


def _write_bytes(data: bytes) -> None:
    """Write a file's bytes (a diff, a fixed file) to stdout, after any text already there."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _run_stdin(current: Invocation) -> int:
    """Lint stdin. With `--fix` the (fixed) file goes to stdout, unchanged where nothing could be
    fixed, and the report to stderr; with `--diff` the diff goes to stdout."""
    args, report = current.args, current.report
    name = args.stdin_filename or "-"
    anchor = Path(name).absolute() if args.stdin_filename else Path.cwd() / "-"
    settings = current.settings_for(anchor.parent)
    raw = sys.stdin.buffer.read()
    result = lint_bytes(name, raw, settings, schema_path=anchor)
    fixed = raw
    if result.unreadable or not current.fixing:
        _found(current, result)
    else:
        outcome = fix_source(result.file.source, settings, args.unsafe_fixes, anchor, result)
        _found(current, outcome.remaining)
        report.would_change = outcome.changed
        fixed = outcome.fixed
        if args.diff:
            _write_bytes(outcome.diff(name))
        else:
            report.fixed = outcome.applied
    if args.fix and not args.diff:
        _write_bytes(fixed)
        return _finish(current, stream=sys.stderr)
    return _finish(current)


def _finish(current: Invocation, stream: TextIO | None = None) -> int:
    args, report = current.args, current.report
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


def _rule_table() -> str:
    rows = []
    for rule in ALL_RULES:
        fix = rule.fix_safety or "-"
        default = "" if rule.default_enabled else " (off by default)"
        rows.append(
            f"{rule.code}  {rule.severity:<7}  fix: {fix:<6}  {rule.name}: {rule.summary}{default}"
        )
    return "".join(row + "\n" for row in rows)


def _explain(code: str) -> int:
    rule = RULES_BY_CODE.get(code.upper())
    if rule is None:
        return _fail(f"unknown rule code {code!r} (see gptlint --list-rules)")
    fix = {
        FixSafety.SAFE: "a safe fix (--fix)",
        FixSafety.UNSAFE: "an unsafe fix (--fix --unsafe-fixes)",
    }.get(rule.fix_safety, "no automatic fix")
    print(f"{rule.code} ({rule.name}): {rule.summary}\n")
    print(f"Severity: {rule.severity}. Has {fix}.\n")
    print(rule.explanation())
    return ExitCode.CLEAN
