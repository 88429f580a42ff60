"""The results worker processes (`parallel`) are finding: the run's files, handed to them at
its start, each file's result taken back when the run reaches the file."""

from __future__ import annotations

import concurrent.futures
import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from gptlint.command import parallel
from gptlint.command.lintfile import FileResult, Mode, lint_chunk
from gptlint.command.plan import FolderSettings, worker_tasks
from gptlint.command.report import Report
from gptlint.lint.diagnostics import escape_path
from gptlint.lint.discover import Target
from gptlint.settings.table import SettingsError
from gptlint.text.deep import run_deep


class Pending:
    """Each handed-out file's result to come, by the file's absolute path; whether a worker
    process died (said once)."""

    def __init__(self) -> None:
        self._shares: dict[str, tuple[Target, parallel.Share]] = {}
        self._died = False

    def start(self, folders: FolderSettings, paths: list[str], mode: Mode) -> parallel.Pool | None:
        """Worker processes linting the run's files, when there are enough files for more
        than one process (`parallel.worker_count`). Called from the main thread while no other
        thread of the run exists, so forking is safe."""
        jobs = _jobs(folders)
        if jobs < 2:
            return None
        try:
            tasks = run_deep(worker_tasks, folders, paths, mode.fixing)
        except Exception:  # the run itself meets it, and reports it where one process would
            return None
        workers = parallel.worker_count(jobs, len(tasks))
        if workers < 2:
            return None
        try:
            pool = parallel.Pool(workers)
            shares = pool.map(lint_chunk, tasks, mode)
        except (OSError, ImportError, NotImplementedError):  # no processes here: lint in this one
            return None
        for (target, _), share in zip(tasks, shares, strict=True):
            self._shares[os.path.abspath(target.path)] = (target, share)
        return pool

    def take(self, key: str, target: Target) -> parallel.Share | None:
        """The share of the file `target` (`key`, its absolute path) a worker lints, if any."""
        pending = self._shares.pop(key, None)
        if pending is not None and pending[0] == target:
            return pending[1]
        return None

    def result(self, share: parallel.Share, target: Target, report: Report) -> FileResult | None:
        """The worker's result for `target`, waiting for it; None where the worker died."""
        try:
            return share.result()
        except BrokenProcessPool:
            self._workers_died(target, report)
            return None

    def _workers_died(self, target: Target, report: Report) -> None:
        """A worker process stopped (killed, out of memory ...) and the pool with it: the files
        without a result are not linted. Said once, with how many files that is."""
        if self._died:
            return
        self._died = True
        shares = [share for _, share in self._shares.values()]
        concurrent.futures.wait({share.future for share in shares})  # a broken pool fails them all
        missed = 1 + sum(share.failed() for share in shares)
        files = "file was" if missed == 1 else "files were"
        report.error(
            f"a worker process stopped unexpectedly: {missed} {files} not linted, the first"
            f" {escape_path(str(target.path))} (--jobs 1 lints in this process alone)"
        )


def _jobs(folders: FolderSettings) -> int:
    """How many processes may lint: `--jobs`, else `jobs` in the pyproject.toml nearest the
    working directory, else one per CPU."""
    jobs = folders.overrides.get("jobs")
    if jobs is None:
        try:
            jobs = folders.settings_for(Path.cwd()).jobs
        except SettingsError:  # reported where a path's files need those settings
            jobs = None
    return jobs or parallel.cpu_count()
