"""What one `gptlint` invocation does: gather files, lint or fix each, print, pick the exit code."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gptlint.diagnostics import Diagnostic
from gptlint.discover import Target, excluded, walk
from gptlint.fix import fix_source, unified_diff, write_atomically
from gptlint.lint import LintResult, lint_bytes, looks_like_config
from gptlint.output import FORMATS
from gptlint.output import text as text_output
from gptlint.rules import ALL_RULES, RULES_BY_CODE
from gptlint.schema import SchemaError
from gptlint.settings import Settings, SettingsError, convert, load_settings
from gptlint.source import SourceError, decode_source

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
_CLI_SETTINGS = (
    "select",
    "ignore",
    "gpu",
    "memory_budget",
    "world_size",
    "defaults",
    "model",
    "fix_strategy",
    "exclude",
)


@dataclass
class Report:
    """What the run found, across files."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    fixed: int = 0
    would_change: bool = False
    errors: bool = False


def run(args: argparse.Namespace) -> int:
    if args.list_rules:
        print(_rule_table(), end="")
        return EXIT_CLEAN
    if args.explain:
        return _explain(args.explain)
    try:
        overrides = _cli_settings(args)
        paths = args.paths or ["."]
        if "-" in paths:
            if len(paths) > 1:
                return _fail("'-' (stdin) cannot be combined with other paths")
            return _run_stdin(args, overrides)
        return _run_paths(args, paths, overrides)
    except (SettingsError, SchemaError) as exc:
        return _fail(str(exc))


def _fail(message: str) -> int:
    print(f"gptlint: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _cli_settings(args: argparse.Namespace) -> dict:
    values = {}
    for name in _CLI_SETTINGS:
        raw = getattr(args, name)
        if raw is None:
            continue
        try:
            values[name] = convert(name, raw, Path.cwd())
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"--{name.replace('_', '-')}: {exc}") from None
    return values


def _settings_for(path: Path, overrides: dict) -> Settings:
    return load_settings(path).merged(overrides)


def _run_paths(args: argparse.Namespace, paths: list[str], overrides: dict) -> int:
    report = Report()
    for name in paths:
        path = Path(name)
        if not path.exists():
            print(f"gptlint: error: {name}: no such file or directory", file=sys.stderr)
            report.errors = True
            continue
        settings = _settings_for(path, overrides)
        if path.is_dir():
            targets = [Target(p, False) for p in walk(path, settings.exclude, settings.root)]
        elif excluded(path, settings.exclude, settings.root):
            targets = []
        else:
            targets = [Target(path, True)]
        linted = sum(_process(target, args, overrides, report) for target in targets)
        if path.is_dir() and not linted:
            print(f"gptlint: error: {name}: no config files found", file=sys.stderr)
            report.errors = True
    return _finish(args, report)


def _process(target: Target, args: argparse.Namespace, overrides: dict, report: Report) -> bool:
    """Lint (or fix) one file; False if it was skipped as not being a config."""
    settings = _settings_for(target.path, overrides)
    try:
        raw = target.path.read_bytes()
    except OSError as exc:
        report.diagnostics.append(
            Diagnostic(
                "GPT000", "error", str(target.path), 1, 1, f"cannot read file: {exc.strerror}"
            )
        )
        report.errors = True
        return True
    result = lint_bytes(str(target.path), raw, settings)
    if (
        not target.explicit
        and result.file is not None
        and not looks_like_config(result.file, settings)
    ):
        return False
    if result.unreadable:
        report.errors = report.errors or bool(result.diagnostics)
        report.diagnostics.extend(result.diagnostics)
        return True
    if args.fix or args.diff or (args.unsafe_fixes and args.fix):
        result = _fix(target.path, raw, settings, args, report)
    report.diagnostics.extend(result.diagnostics)
    return True


def _fix(
    path: Path, raw: bytes, settings: Settings, args: argparse.Namespace, report: Report
) -> LintResult:
    outcome = fix_source(decode_source(str(path), raw), settings, args.unsafe_fixes)
    if outcome.changed:
        report.would_change = True
        if args.diff:
            after = outcome.fixed.decode(outcome.source.encoding)
            sys.stdout.write(unified_diff(str(path), outcome.source.text, after))
        else:
            write_atomically(path, outcome.fixed)
            report.fixed += outcome.applied
    return outcome.remaining


def _run_stdin(args: argparse.Namespace, overrides: dict) -> int:
    name = args.stdin_filename or "-"
    anchor = Path(args.stdin_filename) if args.stdin_filename else Path.cwd() / "-"
    settings = _settings_for(anchor.parent, overrides)
    raw = sys.stdin.buffer.read()
    report = Report()
    result = lint_bytes(name, raw, settings, schema_path=anchor)
    if result.unreadable:
        report.errors = bool(result.diagnostics)
    elif args.fix or args.diff:
        try:
            source = decode_source(name, raw)
        except SourceError:  # pragma: no cover - lint_bytes reported it already
            return EXIT_ERROR
        outcome = fix_source(source, settings, args.unsafe_fixes, schema_path=anchor)
        report.would_change = outcome.changed
        result = outcome.remaining
        if args.diff:
            sys.stdout.write(unified_diff(name, source.text, outcome.fixed.decode(source.encoding)))
        else:
            sys.stdout.buffer.write(outcome.fixed)
            sys.stdout.flush()
            report.fixed = outcome.applied
            report.diagnostics = result.diagnostics
            return _finish(args, report, stream=sys.stderr)
    report.diagnostics = result.diagnostics
    return _finish(args, report)


def _finish(args: argparse.Namespace, report: Report, stream=None) -> int:
    out = stream or sys.stdout
    report.errors = report.errors or any(d.code == "GPT000" for d in report.diagnostics)
    if args.diff:
        for d in report.diagnostics:
            if d.code == "GPT000":
                print(d, file=sys.stderr)
        if report.errors:
            return EXIT_ERROR
        return EXIT_FOUND if report.would_change else EXIT_CLEAN
    if args.statistics:
        out.write(text_output.statistics(report.diagnostics))
    elif args.output_format == "text":
        out.write(text_output.render(report.diagnostics))
        out.write(text_output.summary(report.diagnostics, report.fixed))
    else:
        out.write(FORMATS[args.output_format](report.diagnostics))
    out.flush()
    if report.errors:
        return EXIT_ERROR
    if report.diagnostics and not args.exit_zero:
        return EXIT_FOUND
    return EXIT_CLEAN


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
    fix = {"safe": "a safe fix (--fix)", "unsafe": "an unsafe fix (--fix --unsafe-fixes)"}.get(
        rule.fix_safety or "", "no automatic fix"
    )
    print(f"{rule.code} ({rule.name}): {rule.summary}\n")
    print(f"Severity: {rule.severity}. Has {fix}.\n")
    print(rule.explanation())
    return EXIT_CLEAN
