"""Deep work run with room on CPython's frame stack: what it returns or raises comes through,
and a loop deep inside it never maps a new stack chunk per call (the page faults that cost a
forked capture seconds on CPython 3.11 and 3.12)."""

from __future__ import annotations

import resource
import sys

import pytest

from pytest_gptcfg.engine import framestack

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="minor faults: Linux")

CALLS = 200
"""Calls of a leaf function at each place: a place at a chunk's end faults at each of them."""


def _leaf() -> int:
    return 1


def _loop_at(depth: int) -> int:
    """Page faults taken by `CALLS` calls of `_leaf` from `depth` frames deeper than here."""
    if depth:
        return _loop_at(depth - 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(CALLS):
        _leaf()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _padded(slots: int):
    """`_loop_at` called from a frame of `slots` more local variables: a step of one slot."""

    def call(depth: int) -> int:
        return _loop_at(depth)

    names = call.__code__.co_varnames + tuple(f"_pad{i}" for i in range(slots))
    code = call.__code__.replace(co_varnames=names, co_nlocals=len(names))
    return type(call)(code, globals())


PADS = [_padded(slots) for slots in range(96)]


def _worst_place() -> int:
    """The most page faults of `_loop_at` over every place in a 16 KiB chunk (2,048 slots):
    depths 6 frames apart (84 slots: `_loop_at`'s frame is 14), each tried at 96 one-slot
    steps."""
    return max(pad(depth) for depth in range(0, 200, 6) for pad in PADS)


def test_what_the_work_returns_comes_back():
    assert framestack.with_room(lambda: {"plan": [1, 2]}) == {"plan": [1, 2]}


def test_what_the_work_raises_comes_through():
    def fails() -> None:
        raise ValueError("the model's code")

    with pytest.raises(ValueError, match="the model's code"):
        framestack.with_room(fails)


def test_deep_recursion_inside_still_works():
    def deep(n: int) -> int:
        return 0 if n == 0 else 1 + deep(n - 1)

    assert framestack.with_room(lambda: deep(900)) == 900


@linux
def test_a_loop_deep_inside_maps_no_chunk_per_call():
    assert framestack.with_room(_worst_place) < CALLS // 4


@linux
@pytest.mark.skipif(
    sys.implementation.name != "cpython" or sys.version_info[:2] not in ((3, 11), (3, 12)),
    reason="CPython 3.11 and 3.12 free a stack chunk on every return; others have no chunks "
    "or keep one",
)
def test_without_room_some_depth_maps_a_chunk_per_call():
    """The measure above can see the fault it guards against: here, outside the room."""
    assert _worst_place() >= CALLS
