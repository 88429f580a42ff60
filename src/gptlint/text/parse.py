"""libcst's parser, with no cyclic garbage collection while it builds a tree.

libcst validates every node it makes (`CSTNode.__post_init__` calls the node's `_validate`);
for the parser's own output that repeats the parser's work and costs 13-18% more CPU on a
large config (`benchmarks/big_file.py`'s, 5,000 to 20,000 lines). It is paid: libcst's native
parser builds each node through libcst's own classes, so the only way around it is to change
those classes, for every thread in the process (another tool's nodes in the same pytest run
would then go unvalidated too). gptlint changes nothing of libcst's."""

from __future__ import annotations

import libcst as cst

from gptlint.text.deep import gc_paused


def parse_text(text: str) -> cst.Module:
    """`cst.parse_module(text)`, with no cyclic collection while its nodes are made."""
    with gc_paused():
        return cst.parse_module(text)
