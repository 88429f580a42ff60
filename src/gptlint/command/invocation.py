"""What one `gptlint` invocation does: find the files, lint or fix each (in worker processes
where there are many), report them in the order found, and pick the exit code."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys

from gptlint.command import explain
from gptlint.command.lintfile import FileResult, Mode, internal_error, lint_target
from gptlint.command.pending import Pending
from gptlint.command.plan import FolderSettings, cli_settings, find_files
from gptlint.command.report import Report, finish, report_file
from gptlint.command.stdin import run_stdin
from gptlint.facts.exitcodes import ExitCode
from gptlint.lint.diagnostics import escape_path
from gptlint.lint.discover import Target
from gptlint.nanogpt.schema import SchemaError
from gptlint.output import FORMATS
from gptlint.settings.table import Settings, SettingsError
from gptlint.text.deep import run_deep


class Invocation:
    """One `gptlint` invocation over paths: its options, its report so far, the files already
    seen, the settings of each folder, and the results worker processes are finding."""

    def __init__(self, args: argparse.Namespace, folders: FolderSettings) -> None:
        self.args = args
        self.folders = folders
        self.mode = Mode.of(args)
        self.report = Report()
        self.seen: set[str] = set()
        self.pending = Pending()


def execute(args: argparse.Namespace) -> int:
    if args.list_rules:
        print(explain.rule_table(), end="")
        return ExitCode.CLEAN
    if args.explain:
        return explain.explain(args.explain)
    if args.output_format not in FORMATS:
        known = ", ".join(FORMATS)
        return _fail(f"unknown output format {args.output_format!r} (choose from {known})")
    try:
        folders = FolderSettings(cli_settings(args))
        paths = args.paths or (["-"] if args.stdin_filename else ["."])
        if "-" in paths:
            if len(paths) > 1:
                return _fail("'-' (stdin) cannot be combined with other paths")
            return run_deep(run_stdin, args, folders)
        current = Invocation(args, folders)
        pool = current.pending.start(folders, paths, current.mode)
        try:
            # One deep thread for the whole run (each file's own run_deep then runs inline): a
            # thread per file cost a third of the time on a folder of small configs.
            return run_deep(_run_paths, current, paths)
        finally:
            if pool is not None:
                pool.close()
    except (SettingsError, SchemaError) as exc:
        return _fail(str(exc))


def _fail(message: str) -> int:
    print(f"gptlint: error: {message}", file=sys.stderr)
    return ExitCode.ERROR


def _run_paths(current: Invocation, paths: list[str]) -> int:

    def folder_error(exc: OSError) -> None:
        where = escape_path(str(exc.filename or ""))
        current.report.error(f"{where}: cannot read folder: {exc.strerror or exc}")

    def process(target: Target) -> bool:
        return _process(current, target)

    for name in paths:
        try:  # broken settings of one named path stop that path, not the others
            find_files(current.folders, name, folder_error, process, current.report.error)
        except (SettingsError, SchemaError) as exc:
            current.report.error(str(exc))
    return finish(current.args, current.report)


def _process(current: Invocation, target: Target) -> bool:
    """Report one file (linted here or by a worker) and write its fix; False if it was skipped
    as not being a config. A failure in one file is reported and the run goes on."""
    key = os.path.abspath(target.path)
    if key in current.seen:  # named twice, or named and inside a named folder
        return True
    current.seen.add(key)
    try:
        result = _result(current, key, target)
    except concurrent.futures.CancelledError:  # the run is being stopped (Ctrl-C)
        raise KeyboardInterrupt from None
    except Exception as exc:  # a bug in gptlint: name the file, go on with the others
        if os.environ.get("GPTLINT_DEBUG"):
            raise
        result = FileResult(failure=internal_error(target, exc))
    return result is None or report_file(current.report, target, result)


def _result(current: Invocation, key: str, target: Target) -> FileResult | None:
    """The file's result: a worker's, else found here; None where its worker died."""
    share = current.pending.take(key, target)
    if share is not None:
        return current.pending.result(share, target, current.report)
    try:
        settings: Settings | Exception = current.folders.settings_for(target.path.parent)
    except SettingsError as exc:
        settings = exc
    return lint_target(target, settings, current.mode)
