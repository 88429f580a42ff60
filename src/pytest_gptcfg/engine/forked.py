"""Work done in a forked copy of this process while the process goes on with its own.

Planning a compiled step lowers two graphs with Inductor, the forward's and the backward's,
each a few seconds and neither needing the other's result; on a machine with a core to spare
the backward's is lowered in a fork (which has the graph, the fake tensors and the shape
environment as they are, with nothing to serialise) while this process lowers the forward's.
Likewise a session's later configs and nanochat invocations are checked (their plans made) in a
fork while this process checks the first ones, and the graphs of every batch size are captured
in a fork while a lone check captures its own batch (`beside`). What a fork hands back is plain
data (pickled); a fork that fails, dies or takes too long hands back nothing, and the caller
does the work itself. Each fork takes a core (`spare_cores`), so that forks are never more than
the cores, except one this process waits for (`run_apart`): it takes this process's; and a
process that waits for another's work (`waiting`) lends its core meanwhile. A fork beside the
run (`beside`) takes none: it works at the lowest priority, a head start that yields its core
to the run's own work whenever that work needs it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import mmap
import os
import pickle
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

ENABLED = True
"""Whether work may be forked at all: `spare_cores` offers no core and `run_apart` runs its
work here when off (benchmarks and tests turn it off to compare)."""

T = TypeVar("T")

_running: list[Forked] = []
"""This process's forks that may still be working."""

_busy_beside: tuple[int, ...] = ()
"""In a fork: the processes that were working when it was made (its parent and the parent's
other forks), by pid, each taking a core while it is not `waiting`."""

_WAITING_SLOTS = 1 << 22
_waiting_flags = mmap.mmap(-1, _WAITING_SLOTS)
"""Which processes of this process's family (it and every fork made after this module was
loaded: the mapping is shared with them) wait for another's work (`waiting`), a byte per pid:
4 MiB of addresses, one for each pid 64-bit Linux can give (its `PID_MAX_LIMIT`), of which
only the pages touched take memory."""


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    """This process waits for another's work (blocked on a lock another process holds) and
    uses no core meanwhile: the forks that counted it as working may use its core
    (`spare_cores`)."""
    slot = os.getpid() % _WAITING_SLOTS
    _waiting_flags[slot] = 1
    try:
        yield
    finally:
        _waiting_flags[slot] = 0


def _working(pid: int) -> bool:
    """Whether process `pid` of this family is not `waiting`."""
    return _waiting_flags[pid % _WAITING_SLOTS] == 0


def spare_cores() -> int:
    """The cores this process may use beside its own: those it may run on, shared with the
    pytest-xdist workers beside it (each as busy as this one), less its own and those its
    working forks (and, in a fork, the processes it was forked beside, while they are not
    `waiting`) take. 0 where `fork` is not Linux's (macOS's is unsafe once system frameworks
    are loaded; Windows has none)."""
    if not ENABLED or not sys.platform.startswith("linux"):
        return 0
    cpus = len(os.sched_getaffinity(0))
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    share = cpus // int(workers) if workers.isdigit() and int(workers) > 0 else cpus
    working = sum(fork.running() for fork in list(_running) if not fork.yielding)
    beside = sum(_working(pid) for pid in _busy_beside)
    return max(0, share - 1 - beside - working)


def working_beside() -> int:
    """This process's forks beside it (`beside`) still working."""
    return sum(fork.running() for fork in list(_running) if fork.yielding)


class Forked:
    """`work()` running in a forked child of this process; `result` reads what it returned."""

    def __init__(
        self, work: Callable[[], Any], waited: bool = False, yielding: bool = False
    ) -> None:
        """Fork and start `work()` in the child; `waited`: this process does nothing but wait
        for it (`run_apart`), so the child may use this process's core as its own;
        `yielding`: the child works at the lowest priority (`os.nice`), it and its own forks
        running only on what other work leaves, and takes no core (`spare_cores`)."""
        sys.stdout.flush()  # what is buffered is written once, by this process
        sys.stderr.flush()
        read, write = os.pipe()
        with warnings.catch_warnings():  # Python 3.12+ warns of forking a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            if yielding:
                with contextlib.suppress(OSError):
                    os.nice(_LOWEST_PRIORITY)
            _serve(work, write, parent_busy=not waited)
        os.close(write)
        self.yielding = yielding
        """Whether the child works at the lowest priority (it takes no core)."""
        self._pid = pid
        self._fd = read
        self._reaped = False
        _running.append(self)
        self.started = time.monotonic()
        """When the fork began (`time.monotonic`)."""

    def result(self, timeout: float | None) -> Any | None:
        """What `work()` returned, waiting at most `timeout` seconds more (None: until the
        child ends); None if it raised, the child died, the time ran out (the child is then
        killed) or it was read before."""
        if self._fd < 0:
            return None
        chunks: list[bytes] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        finished = False
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                if not select.select([self._fd], [], [], left)[0]:
                    break
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    finished = True
                    break
                chunks.append(chunk)
        finally:
            self.cancel()
        if not finished:
            return None
        try:
            done, value = pickle.loads(b"".join(chunks))
        except Exception:  # cut short: the child died while writing
            return None
        return value if done else None

    def running(self) -> bool:
        """Whether the child is still working (not finished, killed or read)."""
        if self._fd < 0 or self._reaped:
            return False
        self._reaped = os.waitpid(self._pid, os.WNOHANG)[0] != 0
        return not self._reaped

    def cancel(self) -> None:
        """Stop the child (if it still runs) and reap it."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        if self in _running:
            _running.remove(self)
        if self._reaped:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)
        self._reaped = True


def beside(works: Sequence[Callable[[], object]], autograd: bool = False) -> Forked | None:
    """Where a core is spare, run `works` one after another in a fork beside this process (one
    that raises is passed over), at the lowest priority (`Forked`'s `yielding`: this process's
    own work, and the forks it makes for it, come first), while this process goes on; the
    fork (returned) ends when done, or is killed when this process exits. None where nothing
    was forked; with `autograd` (the works run a backward), nor where a fork cannot
    (`autograd_forks`)."""
    if not works or spare_cores() < 1 or (autograd and not autograd_forks()):
        return None

    def run_all() -> None:
        for work in works:
            with contextlib.suppress(Exception):
                work()

    try:
        fork = Forked(run_all, yielding=True)
    except OSError:  # no process to be had: the work is done where it is needed
        return None
    atexit.register(fork.cancel)
    return fork


_LOWEST_PRIORITY = 19
"""`os.nice`'s increment for a fork beside the run: the lowest priority Linux gives."""

APART_TIMEOUT = 3600.0
"""Seconds `run_apart` waits for its child, far beyond any capture (GPT-2 medium's takes 40 s
here): a child that never ends (a lock another thread held when it was forked) is killed and
the work done here, not waited for for ever."""

_AUTOGRAD_FORK_REFUSED = False
"""A fork of this process was found unable to run a backward (`autograd_forks`)."""


def autograd_forks() -> bool:
    """Whether a fork of this process can run autograd's backward (an AOTAutograd trace runs
    one): not once this process has started autograd's device threads (with a GPU, its first
    backward does; without one, the engine's start is made before a fake mode can give it a
    device: `torchapi.start_autograd`); PyTorch then refuses a backward in a fork ("Unable to
    handle autograd's threading in combination with fork-based multiprocessing"). Asked of a
    fork that runs a one-element backward; a no is kept (the threads stay for the life of the
    process). False where nothing is forked."""
    global _AUTOGRAD_FORK_REFUSED
    if _AUTOGRAD_FORK_REFUSED or not ENABLED or not sys.platform.startswith("linux"):
        return False

    def backward() -> bool:
        import torch

        torch.ones(1, requires_grad=True).sum().backward()
        return True

    try:
        ran = Forked(backward, waited=True).result(timeout=60) is True
    except OSError:
        return False
    _AUTOGRAD_FORK_REFUSED = not ran
    return ran


def run_apart(
    work: Callable[[], T], passed: tuple[type[Exception], ...] = (), autograd: bool = False
) -> T:
    """`work()` run in a forked child while this process waits for it, and what it returned
    (plain data, pickled); an exception of a `passed` kind it raised is raised here. The
    objects the work makes (Inductor's, millions of them) never enter this process's heap,
    and the child ends without collecting them. Where no fork is made (`ENABLED` off, not
    Linux, no process to be had; with `autograd`, the work runs a backward, where a fork
    cannot: `autograd_forks`), or the child dies, raises another exception or runs past
    `APART_TIMEOUT`, `work()` is run here, so that what it raises is this process's own, with
    its traceback."""
    if not ENABLED or not sys.platform.startswith("linux") or (autograd and not autograd_forks()):
        return work()

    def outcome() -> tuple[bool, Any]:
        gc.disable()  # the child's garbage goes with it: no collection needs to run there
        try:
            return True, work()
        except passed as error:
            return False, error

    try:
        fork = Forked(outcome, waited=True)
    except OSError:
        return work()
    came = fork.result(timeout=APART_TIMEOUT)
    if came is None:
        return work()
    returned, value = came
    if not returned:
        raise value
    return value


def _serve(work: Callable[[], Any], fd: int, parent_busy: bool) -> None:
    """In the child: run `work`, write (True, its result) or (False, None) to `fd`, and end
    the process without running anything of the parent's (no atexit, no buffered output).
    Python's warnings are not shown there: under pytest they would reach the terminal raw,
    not the warnings summary; the parent shows those of its own work. `parent_busy`: the
    parent works on meanwhile, taking a core."""
    global _busy_beside
    try:
        parent = (os.getppid(),) if parent_busy else ()
        others = tuple(fork._pid for fork in _running if not fork.yielding)
        _busy_beside += parent + others  # the parent, and its other forks at work
        _running.clear()  # the parent's: not this process's children
        warnings.simplefilter("ignore")
        try:
            data = pickle.dumps((True, work()))
        except BaseException:  # whatever it was, the parent does the work itself
            data = pickle.dumps((False, None))
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    finally:
        os._exit(0)
