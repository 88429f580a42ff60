"""Memory checks made ahead of the test run by the fork beside it (`items.check_beside`), and
handed to their items when the run reaches them.

The run takes the session's memory items from the first, the fork from the last; each claims
an item's check before making it (an exclusive create in the session's folder), so that no
check is made twice. The run, reaching a check the fork claimed, waits for it (lending its core
meanwhile: `forked.waiting`) and takes what the fork made: the check's value, and what the
check printed, written to the run's own streams, where pytest captures it for the item. A
check that warned or raised in the fork is handed over as not made, and so is one the fork did
not finish (it died, or the session ended it): the run makes it itself, so that the warning or
the failure is its own, as it would be without a fork.

Plain Python: the fork's work is the item's own check, given as a callable.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar, cast

if TYPE_CHECKING:
    from pytest_gptcfg.engine.forked import Forked

T = TypeVar("T")

_POLL_SECONDS = 0.01
"""How often the run looks for a check the fork is making."""


class AheadChecks:
    """One session's checks made ahead: the folder where the run and the fork claim them and
    the fork leaves what it made, and the fork (`forked.Forked`, once it is made)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="gptcfg-ahead-"))
        self.fork: Forked | None = None

    def make(self, name: str, check: Callable[[], object]) -> None:
        """In the fork: make the check `name` unless the run has claimed it, and leave its
        value and what it printed (`_kept_apart`) for the run; where it warned, raised or
        cannot be pickled, leave the mark that it was not made."""
        if not self._claim(name):
            return
        made = b""
        try:
            with contextlib.suppress(Exception):
                kept = _kept_apart(check)
                if kept is not None:
                    made = pickle.dumps(kept)
        finally:
            partial = self._path(name, ".part")
            partial.write_bytes(made)
            partial.replace(self._path(name, ".made"))

    def take(self, name: str, check: Callable[[], T]) -> T:
        """In the run: what the fork made of the check `name` (what it printed written to this
        process's streams), or, where the fork has not claimed it (or the run itself has, as
        for a test run again) or did not make it, `check()` made here."""
        if self._claim(name) or self._claimer(name) == os.getpid():
            return check()
        kept = self._wait(name)
        if kept is None:
            return check()
        value, out, err = kept
        sys.stdout.write(out)
        sys.stderr.write(err)
        return cast(T, value)

    def close(self) -> None:
        """End the fork (what it has not made is not needed) and remove the folder."""
        if self.fork is not None:
            self.fork.cancel()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _wait(self, name: str) -> tuple[object, str, str] | None:
        """What the fork made of `name` once it is there; None where it was not made, or the
        fork ended before making it, or is still at it after `forked.APART_TIMEOUT` (far
        beyond any check: one that never ends, as a fork can that was made while another
        thread held a lock), when it is ended."""
        from pytest_gptcfg.engine import forked

        made = self._path(name, ".made")
        deadline = time.monotonic() + forked.APART_TIMEOUT
        with forked.waiting():
            while not made.exists() and self.fork is not None and self.fork.running():
                if time.monotonic() > deadline:
                    self.fork.cancel()
                    return None
                time.sleep(_POLL_SECONDS)
        try:
            data = made.read_bytes()
            kept: tuple[object, str, str] | None = pickle.loads(data) if data else None
        except Exception:  # not there: the fork ended first
            return None
        return kept

    def _claim(self, name: str) -> bool:
        """Claim the check `name` for this process (the claim holds its pid); False where it
        was claimed before."""
        try:
            claim = os.open(self._path(name, ".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        try:
            os.write(claim, str(os.getpid()).encode())
        finally:
            os.close(claim)
        return True

    def _claimer(self, name: str) -> int | None:
        """The pid of the process that claimed `name` (None while its claim is being made)."""
        text = self._path(name, ".claim").read_text()
        return int(text) if text else None

    def _path(self, name: str, suffix: str) -> Path:
        return self.folder / (hashlib.sha256(name.encode()).hexdigest()[:32] + suffix)


def _kept_apart(check: Callable[[], object]) -> tuple[object, str, str] | None:
    """`check()`'s value and what it printed to standard output and error (through Python's
    streams or the file descriptors under them: kept, not written where the run's are), every
    warning it raises recorded whatever the filters; None where it raised one."""
    with tempfile.TemporaryFile() as out_fd, tempfile.TemporaryFile() as err_fd:
        with (
            _descriptors_to(out_fd, err_fd),
            contextlib.redirect_stdout(io.StringIO()) as out,
            contextlib.redirect_stderr(io.StringIO()) as err,
            warnings.catch_warnings(record=True) as warned,
        ):
            warnings.simplefilter("always")
            value = check()
        if warned:
            return None
        out_fd.seek(0)
        err_fd.seek(0)
        return (
            value,
            out.getvalue() + out_fd.read().decode(errors="replace"),
            err.getvalue() + err_fd.read().decode(errors="replace"),
        )


@contextlib.contextmanager
def _descriptors_to(out: BinaryIO, err: BinaryIO) -> Iterator[None]:
    """File descriptors 1 and 2 pointed at `out` and `err`, and back after."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
