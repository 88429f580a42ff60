"""Reading a text again after a few of its statements changed (a pass of fixes): only the
changed statements are parsed, the others' nodes are kept."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from gptlint.text.parse import parse_text
from gptlint.text.positions import line_starts, statement_lines

MAX_REREAD_STATEMENTS = 200
"""More changed statements than this: the whole text is parsed again."""


@dataclass(frozen=True, eq=False)
class Reparser:
    """A text libcst read as `module`, whose top-level statements start at `first_lines` (as
    `positions.statement_lines` gives them; None where not known: nothing is read from it).
    A text that differs from it only inside a few simple statement lines, with as many lines,
    is read by parsing just those statements and keeping `module`'s nodes for the others: the
    tree libcst would give for the whole text, for a fraction of the cost in a large file. A
    fix pass changes so little of a file."""

    text: str
    module: cst.Module
    first_lines: Sequence[int] | None

    def reread(self, text: str, tree: ast.Module) -> cst.Module | None:
        """`text`'s tree (`tree` is CPython's) from this one where the changes allow, else
        None.

        Every statement is one run of whole lines: its leading (comment and blank) lines,
        then its own. The header above the first statement, the footer below the last and
        every statement whose lines are unchanged are kept; a changed statement must be a
        simple statement line (no indented block, whose comments could move between
        statements) whose leading lines did not change, and read alone must give one such
        statement with as many leading lines, no footer and the file's line ending. Every
        statement must start on the line CPython's tree says it starts on."""
        module = self.module
        if self.first_lines is None or text.endswith("\r"):
            return None
        first_lines = list(self.first_lines)
        if len(first_lines) != len(module.body):
            return None
        if text == self.text:
            return module
        old, new = _Lines(self.text), _Lines(text)
        if len(old.starts) != len(new.starts) or statement_lines(tree) != first_lines:
            return None
        body = module.body
        starts = [line - len(s.leading_lines) for line, s in zip(first_lines, body, strict=True)]
        if starts[0] - 1 != len(module.header):
            return None
        bounds = [1, *starts, new.count + 1 - len(module.footer), new.count + 1]
        if bounds != sorted(bounds):
            return None
        if old.text(1, bounds[1]) != new.text(1, bounds[1]):
            return None  # the header changed
        if old.text(bounds[-2], bounds[-1]) != new.text(bounds[-2], bounds[-1]):
            return None  # the footer changed
        new_body = list(body)
        changed = 0
        for index, statement in enumerate(body):
            begin, end = bounds[index + 1], bounds[index + 2]
            code = new.text(begin, end)
            if old.text(begin, end) == code:
                continue
            lead = len(statement.leading_lines)
            changed += 1
            if (
                not isinstance(statement, cst.SimpleStatementLine)
                or begin <= 2  # where a coding declaration may be
                or changed > MAX_REREAD_STATEMENTS
                or old.text(begin, begin + lead) != new.text(begin, begin + lead)
            ):
                return None
            try:
                alone = parse_text(code)
            except cst.ParserSyntaxError:
                return None
            last = index == len(body) - 1
            read = alone.body[0] if len(alone.body) == 1 else None
            if (
                not isinstance(read, cst.SimpleStatementLine)
                or alone.footer
                or alone.default_newline != module.default_newline
                or alone.has_trailing_newline != (module.has_trailing_newline or not last)
                or len(alone.header) + len(read.leading_lines) != lead
            ):
                return None
            new_body[index] = read.with_changes(leading_lines=(*alone.header, *read.leading_lines))
        return module.with_changes(body=new_body)


class _Lines:
    """A text's lines, 1-based (as Python ends them: \\r\\n, \\r or \\n)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self.starts = line_starts(text)
        ends_line = text.endswith(("\n", "\r")) or not text
        self.count = len(self.starts) - 1 if ends_line else len(self.starts)

    def text(self, first: int, stop: int) -> str:
        """Lines `first` to `stop` (not included)."""
        return self._text[self._start(first) : self._start(stop)]

    def _start(self, line: int) -> int:
        return self.starts[line - 1] if line <= len(self.starts) else len(self._text)
