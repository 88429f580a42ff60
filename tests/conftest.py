"""What every test may use: `hang_guard`, the timeout that stands in for timing asserts."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest


@contextmanager
def _hang_guard(seconds: float) -> Iterator[None]:
    main_thread = threading.current_thread() is threading.main_thread()
    if not main_thread or not hasattr(signal, "setitimer"):
        yield  # no SIGALRM here (not POSIX, or not the main thread): unguarded
        return

    def stop(signum: int, frame: object) -> None:
        pytest.fail(f"hang guard: still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def hang_guard() -> Callable[[float], AbstractContextManager[None]]:
    """`with hang_guard(seconds): ...` fails the test, with a traceback of where it was, if the
    block is still running after `seconds` (SIGALRM). The limit catches a hang, so make it
    generous: a timing is never asserted (speed goals are rows of the scripts in benchmarks/).
    The failure is pytest's, not an Exception, so no `except Exception` in gptlint swallows it,
    and Hypothesis shrinks an example that hangs. Python code only: a call that may hang inside
    native code (a parser) belongs in a child process run with `subprocess.run(timeout=...)`.
    Session-scoped so that Hypothesis tests may use it."""
    return _hang_guard
