"""Room on CPython's frame stack for the engine's deep work.

CPython 3.11 and 3.12 keep a thread's Python frames on a stack of 16 KiB chunks: a call that
finds its chunk full maps a new one, and unmaps it when it returns (CPython issue gh-142183,
"Calls across stack chunks perform badly"; the fix merged for 3.13 and 3.14 in 2026 keeps
one chunk). A loop whose calls cross a chunk's end maps and unmaps a chunk at every call,
and writes each new mapping's first page: a page fault. Where the chunk ends depends on how
deep the caller's stack already was: Inductor's joint-graph passes over GPT-2's graph, run
in a forked child a few frames deeper than the same capture run in the process, took
314,000 page faults and 3.6 s there, 31,000 and 1.0 s here.

`with_room` runs its work under one frame of `_SLOTS` local variables (a frame's locals live
in its chunk): no 512 KiB chunk holds it, so CPython maps a chunk of 1 MiB for it alone, and
the frames the work calls fill the chunk's other half (66,000 slots, a thousand frames of
Inductor's and more) before any of them reaches a chunk's end. Elsewhere (Python 3.10, whose
frames are objects of their own; a CPython that caches its chunks) it costs one frame's
allocation per call.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_SLOTS = 64_600
"""The roomy frame's local variables: with CPython's margin of 1,000 slots a chunk holds over
a frame (`push_chunk`, `Python/pystate.c`), more than 512 KiB of 8-byte slots, so its chunk is
1 MiB and about half of it is left for the frames above it."""


def _call(work: Callable[[], T]) -> T:
    return work()


@functools.cache
def _roomy() -> Callable[[Callable[[], T]], T]:
    """`_call` with `_SLOTS` local variables more (never assigned)."""
    code = _call.__code__
    names = code.co_varnames + tuple(f"_slot{i}" for i in range(_SLOTS))
    roomy: Callable[[Callable[[], T]], T] = types.FunctionType(
        code.replace(co_varnames=names, co_nlocals=len(names)), {}, "_call"
    )
    return roomy


def with_room(work: Callable[[], T]) -> T:
    """`work()` (what it returns or raises), run with a half-MiB of CPython's frame stack
    above it in one chunk: its deep call chains never cross a chunk's end."""
    return _roomy()(work)
