"""Running what recurses once per level of a deeply nested expression (libcst's parser,
visitors and positions, the evaluator): in a thread with a large stack; and building a large
tree without cyclic garbage collection going through it."""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

DEEP_STACK_BYTES = 512 << 20
DEEP_RECURSION_LIMIT = 60_000
_deep = threading.local()
_deep_lock = threading.Lock()


def run_deep(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, run where recursion `nesting.MAX_NESTING` levels deep fits: in a
    thread with a large stack and a raised recursion limit (libcst's parser, visitors and
    positions and the evaluator all recurse once per level of nesting). Already there: called
    directly."""
    if getattr(_deep, "active", False):
        return function(*args)
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        _deep.active = True
        try:
            outcome.append((True, function(*args)))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    with _deep_lock:
        previous_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous_limit, DEEP_RECURSION_LIMIT))
        previous_stack = threading.stack_size(DEEP_STACK_BYTES)
        try:
            thread = threading.Thread(target=target, name="gptlint-deep", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous_stack)
    try:
        thread.join()
    finally:  # the main thread's stack is small: its limit goes back to what it was
        sys.setrecursionlimit(previous_limit)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while parsing builds a large tree: a full collection goes
    through every object alive (the trees of earlier passes too), and building a tree of
    millions of nodes would start several (a quarter of the time linting and fixing a
    50,000-line file took). The trees have no cycles; garbage left meanwhile is collected
    once collection resumes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
