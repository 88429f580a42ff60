"""libcst's tree of a text `syntax.check_syntax` accepted."""

from __future__ import annotations

import libcst as cst

from gptlint.text.parse import parse_text
from gptlint.text.reread import Reparser
from gptlint.text.syntax import CheckedText


def parse_module(checked: CheckedText, reparser: Reparser | None = None) -> cst.Module:
    """libcst's tree of `checked.text`. An implicit string concatenation too long for libcst's
    parser is read in pieces joined by ImplicitJoin operators (`checked.joins`), and the
    tree's code is still the text (checked: SourceError where not). Otherwise, where
    `reparser` can read the text from the tree of an earlier one (a fix pass's), it does."""
    if checked.joins is not None:
        return checked.joins.parse(checked.text)
    if reparser is not None:
        reread = reparser.reread(checked.text, checked.tree)
        if reread is not None:
            return reread
    return parse_text(checked.text)
