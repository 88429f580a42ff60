"""A fix as text edits, for the machine-readable formats (Ruff's `fix.edits`).

A `Fix` rewrites libcst nodes. To say which characters it changes, the one fix is applied alone
to the file (as `--fix` would apply it) and the result is diffed against the original text: each
changed block of lines, narrowed to the characters that differ, is one edit, located with
1-based rows and columns (columns count Unicode code points, as the diagnostics' do).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

from gptlint.lint.diagnostics import Diagnostic
from gptlint.lint.fix import apply_fixes
from gptlint.lint.linter import LintResult
from gptlint.text.deep import run_deep


@dataclass(frozen=True)
class TextEdit:
    """Replace the text from (row, column) up to, not including, (end_row, end_column) with
    `content`; equal start and end insert it there."""

    content: str
    row: int
    column: int
    end_row: int
    end_column: int


FixEdits = Mapping[Diagnostic, tuple[TextEdit, ...]]
"""The text edits of each diagnostic's fix, as `fix_edits` finds them."""

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def fix_edits(result: LintResult) -> dict[Diagnostic, tuple[TextEdit, ...]]:
    """The text edits of every fix in a file's lint result (none when it could not be parsed)."""
    if result.file is None:
        return {}
    file = result.file
    return run_deep(  # regenerating the tree recurses as deep as the file nests
        lambda: {
            d: text_edits(file.source.text, apply_fixes(file, [d]))
            for d in result.diagnostics
            if d.fix is not None
        }
    )


def text_edits(before: str, after: str) -> tuple[TextEdit, ...]:
    """The edits that turn `before` into `after`: lines compared with SequenceMatcher, and
    each changed block of lines trimmed to the characters that differ."""
    old, new = _lines(before), _lines(after)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_starts, new_starts = _starts(old), _starts(new)
    matcher = SequenceMatcher(None, old[head : len(old) - tail], new[head : len(new) - tail], False)
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start, end = old_starts[head + i1], old_starts[head + i2]
        new_start, new_end = new_starts[head + j1], new_starts[head + j2]
        start, end, content = _narrow(before[start:end], after[new_start:new_end], start)
        where, end_where = _position(old, old_starts, start), _position(old, old_starts, end)
        edits.append(TextEdit(content, *where, *end_where))
    return tuple(edits)


def _narrow(old: str, new: str, offset: int) -> tuple[int, int, str]:
    """The part of `old` (found at `offset`) that differs from `new`, and what replaces it:
    the text both share at the start and at the end is left out."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return offset + prefix, offset + len(old) - suffix, new[prefix : len(new) - suffix]


def _lines(text: str) -> list[str]:
    """`text` split after each line ending Python knows (\\r\\n, \\r, \\n), endings kept."""
    return _LINE.findall(text)


def _starts(lines: list[str]) -> list[int]:
    """The offset at which each line starts, and the text's length after the last."""
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return starts


def _position(lines: list[str], starts: list[int], offset: int) -> tuple[int, int]:
    """1-based row and column of `offset` in the text of `lines`; its end is past the last
    line, or on the row after it when that line has a line ending (where an editor puts it)."""
    if offset < starts[-1]:
        row = bisect_right(starts, offset)
        return row, offset - starts[row - 1] + 1
    if not lines or lines[-1].endswith(("\r", "\n")):
        return len(lines) + 1, 1
    return len(lines), offset - starts[-2] + 1
