"""libcst's parser, run as fast as libcst allows: no cyclic garbage collection while it builds
a tree, and no validation of the nodes it builds."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import libcst as cst

from gptlint.text.deep import gc_paused

_VALIDATE_NODE = cst.CSTNode.__post_init__
_unvalidated_lock = threading.Lock()
_unvalidated_depth = 0


def parse_text(text: str) -> cst.Module:
    """`cst.parse_module(text)`, made as fast as libcst allows: no cyclic collection while its
    nodes are made (`gc_paused`) and no validation of what the parser made."""
    with gc_paused(), _nodes_unvalidated():
        return cst.parse_module(text)


def _skip_validation(self: cst.CSTNode) -> None:
    """What a node built by libcst's parser runs in place of its validation."""


@contextlib.contextmanager
def _nodes_unvalidated() -> Iterator[None]:
    """libcst nodes made meanwhile skip their validation (`CSTNode.__post_init__`), which
    checks that a node holds what a parser could have given it: for the parser's own output
    it only repeats the parser's work (libcst notes as much beside it), and it costs a sixth
    of parsing a small config. Nested and concurrent uses are counted; the first to begin
    turns validation off and the last to end turns it back on."""
    global _unvalidated_depth
    with _unvalidated_lock:
        _unvalidated_depth += 1
        cst.CSTNode.__post_init__ = _skip_validation  # type: ignore[method-assign]
    try:
        yield
    finally:
        with _unvalidated_lock:
            _unvalidated_depth -= 1
            if not _unvalidated_depth:
                cst.CSTNode.__post_init__ = _VALIDATE_NODE  # type: ignore[method-assign]
