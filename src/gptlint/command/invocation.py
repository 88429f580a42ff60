"""What one `gptlint` invocation does: gather files, lint or fix each, print, pick the exit code."""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from gptlint.command import parallel
from gptlint.facts.exitcodes import ExitCode
from gptlint.facts.kinds import FixSafety, Severity
from gptlint.lint.context import model_defaults
from gptlint.lint.diagnostics import Diagnostic, Fix, escape_path
from gptlint.lint.discover import Target, excluded, selects, walk
from gptlint.lint.fix import fix_source
from gptlint.lint.linter import LintResult, lint_bytes
from gptlint.lint.rules import ALL_RULES, RULES_BY_CODE
from gptlint.nanogpt.schema import NANOGPT_SCHEMA, SchemaError, schema_for
from gptlint.output import FORMATS, WITH_EDITS, fix_edits, statistics
from gptlint.output import text as text_output
from gptlint.settings.pyproject import convert, load_settings
from gptlint.settings.table import SETTINGS, Settings, SettingsError
from gptlint.text.decode import unread_reason
from gptlint.text.deep import run_deep
from gptlint.text.files import read_regular
from gptlint.text.write import write_atomically


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

    def note(self, message: str) -> None:
        """Say something the run did besides its findings (no change to the exit code)."""
        print(f"gptlint: {message}", file=sys.stderr)


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
    edits: dict = field(default_factory=dict)
    would_change: bool = False
    diff: bytes | None = None  # --diff: the file's diff, for stdout
    fixed: bytes | None = None  # --fix: the file's new bytes, to write
    read: bytes | None = None  # --fix: the bytes they were made from (written only over them)
    applied: int = 0
    failure: str | None = None  # a bug in gptlint, reported with the file's name
    stop: Exception | None = None  # broken settings or train.py: the named path stops here


class Invocation:
    """One `gptlint` invocation: its options, its report so far, the files already seen, the
    settings of each folder, looked up once, and the results worker processes are finding."""

    def __init__(self, args: argparse.Namespace, overrides: dict) -> None:
        self.args = args
        self.overrides = overrides
        self.mode = Mode.of(args)
        self.report = Report()
        self.seen: set[str] = set()
        self.pending: dict[str, tuple[Target, parallel.Share]] = {}
        self.workers_died = False
        self._settings: dict[Path, Settings] = {}

    def settings_for(self, folder: Path) -> Settings:
        """`[tool.gptlint]` from the nearest pyproject.toml above `folder`, CLI values on top."""
        if folder not in self._settings:
            self._settings[folder] = load_settings(folder).merged(self.overrides)
        return self._settings[folder]

    def jobs(self) -> int:
        """How many processes may lint: `--jobs`, else `jobs` in the pyproject.toml nearest
        the working directory, else one per CPU."""
        jobs = self.overrides.get("jobs")
        if jobs is None:
            try:
                jobs = self.settings_for(Path.cwd()).jobs
            except SettingsError:  # reported where a path's files need those settings
                jobs = None
        return jobs or parallel.cpu_count()


def execute(args: argparse.Namespace) -> int:
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
        pool = _start_workers(current, paths)
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


def _start_workers(current: Invocation, paths: list[str]) -> parallel.Pool | None:
    """Worker processes linting the run's files, when there are enough files for more than one
    process (`parallel.worker_count`); their results wait in `current.pending`. Called from
    the main thread while no other thread of the run exists, so forking is safe."""
    jobs = current.jobs()
    if jobs < 2:
        return None
    try:
        tasks = run_deep(_plan, current, paths)
    except Exception:  # the run itself meets it, and reports it where one process would
        return None
    workers = parallel.worker_count(jobs, len(tasks))
    if workers < 2:
        return None
    try:
        pool = parallel.Pool(workers)
        shares = pool.map(_lint_chunk, tasks, current.mode)
    except (OSError, ImportError, NotImplementedError):  # no processes here: lint in this one
        return None
    for (target, _), share in zip(tasks, shares, strict=True):
        current.pending[os.path.abspath(target.path)] = (target, share)
    return pool


def _plan(current: Invocation, paths: list[str]) -> list[tuple[Target, Settings]]:
    """The files the run lints, each once, with their settings: found as `_run_paths` finds
    them, reporting nothing (a file whose settings are broken, or that `--fix` reaches by a
    second name, is left to the run itself). The train.py and model.py each folder's configs
    use are read here, once: forked workers inherit them. None to hand to workers where
    `--fix` may rewrite one of those (the `defaults` file is itself a config of the run): the
    configs after it must see it fixed, as one process has them."""
    found: dict[str, Target] = {}

    def collect(current: Invocation, target: Target) -> bool:
        found.setdefault(os.path.abspath(target.path), target)
        return True

    for name in paths:
        try:
            _run_path(current, name, _ignore, collect, _ignore)
        except (SettingsError, SchemaError):
            continue
    tasks, read, files, schemas = [], set(), {}, set()
    for target in found.values():
        try:
            settings = current.settings_for(target.path.parent)
        except SettingsError:
            continue
        if current.mode.fixing:  # a file by a second name (a link) is read after the first's fix
            file = os.path.realpath(target.path)
            if file in files:
                continue
            files[file] = (target, settings)
        tasks.append((target, settings))
        if (target.path.parent, settings) not in read:
            read.add((target.path.parent, settings))
            schemas |= _read_schema(target.path, settings)
    for file in schemas & files.keys():  # a train.py is code, never fixed; a defaults file may be
        target, settings = files[file]
        if selects(target.path, None if target.explicit else target.path.parent, settings):
            return []
    return tasks


def _read_schema(config: Path, settings: Settings) -> set[str]:
    """Read (into their caches) the train.py and model.py that `config`'s lint will use; their
    real paths."""
    read = {os.path.realpath(p) for p in (settings.defaults, settings.model) if p is not None}
    with contextlib.suppress(Exception):  # the file's own lint reports it, in its place
        schema = schema_for(config, settings)
        model_defaults(schema, settings)
        if schema is not NANOGPT_SCHEMA:
            origin = Path(schema.origin)
            read |= {os.path.realpath(origin), os.path.realpath(origin.parent / "model.py")}
    return read


def _ignore(_: object) -> None:
    pass


def _run_paths(current: Invocation, paths: list[str]) -> int:

    def folder_error(exc: OSError) -> None:
        where = escape_path(str(exc.filename or ""))
        current.report.error(f"{where}: cannot read folder: {exc.strerror or exc}")

    for name in paths:
        try:  # broken settings of one named path stop that path, not the others
            _run_path(current, name, folder_error, _process, current.report.error)
        except (SettingsError, SchemaError) as exc:
            current.report.error(str(exc))
    return _finish(current)


def _run_path(
    current: Invocation,
    name: str,
    folder_error: Callable[[OSError], None],
    process: Callable[[Invocation, Target], bool],
    error: Callable[[str], None],
) -> None:
    """Lint (or fix) one named file, or the configs in one named folder: `process` each file,
    `error` for a path that names none."""
    shown = escape_path(name)
    if not name:
        error("'': an empty path names no file or folder")
        return
    path = Path(name)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            error(f"{shown}: no such file or directory")
        else:
            error(f"{shown}: {exc.strerror or exc}")
        return
    if stat.S_ISDIR(mode):
        settings = current.settings_for(path)
        found = list(walk(path, settings.exclude, settings.root, folder_error))
        if not sum(process(current, Target(p, False)) for p in found):
            error(f"{shown}: no config files found{_all_excluded(path, found, settings)}")
        return
    if not stat.S_ISREG(mode):
        error(f"{shown}: not a regular file or folder, skipped")
        return
    settings = current.settings_for(path.parent)
    if not excluded(path, settings.exclude, settings.root):
        process(current, Target(path, True))


def _all_excluded(folder: Path, found: list[Path], settings: Settings) -> str:
    """Where the `exclude` setting left out every `.py` file of `folder`, that said."""
    if found or not settings.exclude or not any(walk(folder, (), settings.root, _ignore)):
        return ""
    return f" (every .py file here matches the exclude setting: {list(settings.exclude)})"


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
        result = FileResult(failure=_internal_error(target, exc))
    return result is None or _report(current, target, result)


def _result(current: Invocation, key: str, target: Target) -> FileResult | None:
    """The file's result: a worker's, else found here; None where its worker died."""
    pending = current.pending.pop(key, None)
    if pending is not None and pending[0] == target:
        try:
            return pending[1].result()
        except BrokenProcessPool:
            _workers_died(current, target)
            return None
    try:
        settings: Settings | Exception = current.settings_for(target.path.parent)
    except SettingsError as exc:
        settings = exc
    return _lint_target(target, settings, current.mode)


def _workers_died(current: Invocation, target: Target) -> None:
    """A worker process stopped (killed, out of memory ...) and the pool with it: the files
    without a result are not linted. Said once, with how many files that is."""
    if current.workers_died:
        return
    current.workers_died = True
    shares = [share for _, share in current.pending.values()]
    concurrent.futures.wait({share.future for share in shares})  # a broken pool fails them all
    missed = 1 + sum(share.failed() for share in shares)
    files = "file was" if missed == 1 else "files were"
    current.report.error(
        f"a worker process stopped unexpectedly: {missed} {files} not linted, the first"
        f" {escape_path(str(target.path))} (--jobs 1 lints in this process alone)"
    )


def _lint_chunk(tasks: list[tuple[Target, Settings]], mode: Mode) -> list[FileResult]:
    """A worker's part of the run: each file's result (in one deep thread for all of them)."""
    return run_deep(lambda: [_lint_target(target, settings, mode) for target, settings in tasks])


def _lint_target(target: Target, settings: Settings | Exception, mode: Mode) -> FileResult:
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
        return FileResult(failure=_internal_error(target, exc))


def _unreadable(target: Target, message: str) -> Diagnostic:
    return Diagnostic("GPT000", Severity.ERROR, str(target.path), 1, 1, message)


def _internal_error(target: Target, exc: Exception) -> str:
    return (
        f"{target.path}: internal error: {type(exc).__name__}: {exc}"
        " (please report it; GPTLINT_DEBUG=1 shows the traceback)"
    )


def _lint_or_fix(target: Target, raw: bytes, settings: Settings, mode: Mode) -> FileResult:
    result = lint_bytes(str(target.path), raw, settings, configs_only=not target.explicit)
    if result.skipped:
        return FileResult(linted=False)
    if result.unreadable or not mode.fixing:
        return _found_in(result, mode)
    outcome = fix_source(result.file.source, settings, mode.unsafe, result=result)
    found = _found_in(outcome.remaining, mode)
    if outcome.changed:
        found.would_change = True
        if mode.diff:
            found.diff = outcome.diff(str(target.path))
        else:
            found.fixed, found.applied, found.read = outcome.fixed, outcome.applied, raw
    return found


def _found_in(result: LintResult, mode: Mode) -> FileResult:
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


def _report(current: Invocation, target: Target, result: FileResult) -> bool:
    """Report one file's result and write its fix, in the run's order; False where the file
    was skipped as not being a config."""
    report = current.report
    if result.stop is not None:
        raise result.stop
    if result.failure is not None:
        report.error(result.failure)
        return True
    if not result.linted:
        return False
    _add_found(report, result)
    if result.would_change:
        report.would_change = True
    if result.diff is not None:
        _write_bytes(result.diff)
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


def _add_found(report: Report, found: FileResult) -> None:
    """Add a file's diagnostics and their fixes' text edits (`_found_in`) to the report."""
    report.diagnostics.extend(found.diagnostics)
    report.edits.update(found.edits)


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
    if result.unreadable or not current.mode.fixing:
        _add_found(report, _found_in(result, current.mode))
    else:
        outcome = fix_source(result.file.source, settings, args.unsafe_fixes, anchor, result)
        _add_found(report, _found_in(outcome.remaining, current.mode))
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
