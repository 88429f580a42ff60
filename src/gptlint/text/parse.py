"""libcst's parser, run as fast as libcst allows: no cyclic garbage collection while it builds
a tree, and no validation of the nodes it builds for gptlint.

libcst validates every node it makes (`CSTNode.__post_init__` calls the node's `_validate`,
which checks that the node holds what a parser could have given it). For the parser's own
output that only repeats the parser's work (libcst notes as much beside it), and it costs
13-18% more CPU to parse a large config (`benchmarks/big_file.py`'s, 5,000 to 20,000 lines).

No node path of gptlint's own can avoid it: libcst's native parser (`libcst.native`, the
only parser libcst has) builds each node by calling the class of that name on the module
found as `sys.modules["libcst"]` (`libcst.Name(**fields)`), and returns only the finished
tree. So only a change to what libcst's classes run skips validation, and a class is shared
by every thread: it cannot be patched for one thread. The change made here is the narrowest
one: only while some thread is in `parse_text`, `CSTNode.__post_init__` is
`_validate_unless_parsing`, which skips validation in the threads that are in `parse_text`
and validates as libcst does in every other one (the check adds about 3% to a parse, and
as much to the nodes other threads build meanwhile). When no thread is parsing, libcst's
class is as it was."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import libcst as cst

from gptlint.text.deep import gc_paused


def parse_text(text: str) -> cst.Module:
    """`cst.parse_module(text)`, with no cyclic collection while its nodes are made
    (`gc_paused`) and no validation of what the parser made."""
    with gc_paused(), _unvalidated_in_this_thread():
        return cst.parse_module(text)


_parsing = threading.local()
"""`active` where this thread is in `parse_text`."""

_lock = threading.Lock()
_threads_parsing = 0
_libcst_post_init = cst.CSTNode.__post_init__
"""`CSTNode.__post_init__` as it was when the first of the threads now parsing began."""


def _validate_unless_parsing(self: cst.CSTNode) -> None:
    """`CSTNode.__post_init__` while a thread is in `parse_text`: libcst's validation, except
    in a thread that is in `parse_text`."""
    if not getattr(_parsing, "active", False):
        _libcst_post_init(self)


@contextlib.contextmanager
def _unvalidated_in_this_thread() -> Iterator[None]:
    """libcst nodes made meanwhile in this thread skip their validation; other threads'
    are validated. The first thread to begin puts `_validate_unless_parsing` in place of
    `CSTNode.__post_init__`, and the last to end puts libcst's back."""
    global _threads_parsing, _libcst_post_init
    if getattr(_parsing, "active", False):  # already: an outer call ends it
        yield
        return
    with _lock:
        if not _threads_parsing:
            _libcst_post_init = cst.CSTNode.__post_init__
            cst.CSTNode.__post_init__ = _validate_unless_parsing  # type: ignore[method-assign]
        _threads_parsing += 1
    _parsing.active = True
    try:
        yield
    finally:
        _parsing.active = False
        with _lock:
            _threads_parsing -= 1
            if not _threads_parsing:
                cst.CSTNode.__post_init__ = _libcst_post_init  # type: ignore[method-assign]
