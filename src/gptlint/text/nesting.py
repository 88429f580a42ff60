"""How deep an expression nests as libcst builds it, where every `or`/`and` and every part of
an implicit string concatenation is one more level (CPython keeps those flat), and where each
part of an implicit concatenation is in the text."""

from __future__ import annotations

import ast
import tokenize
from functools import cached_property
from typing import TypeGuard

from gptlint.text.positions import line_starts

MAX_NESTING = 3000
"""How deep an expression may nest as libcst builds it. libcst's own parser refuses implicit
concatenations of more than 3,000 parts; longer ones are read in pieces (see `joins`)."""

Span = tuple[int, int, int, int]
"""An ast node's (lineno, col_offset, end_lineno, end_col_offset)."""

PartSpans = list[tuple[int, int]]
"""Where each string literal of an implicit concatenation starts and ends in the text."""


def node_span(node: ast.expr | ast.stmt) -> Span:
    """`node`'s Span."""
    return (node.lineno, node.col_offset, node.end_lineno or 0, node.end_col_offset or 0)


class LineOffsets:
    """Where each line of a text starts (lines end at \\r\\n, \\r or \\n, as Python's), and
    CPython's (line, UTF-8 byte column) positions as offsets into the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._encoded: dict[int, bytes | None] = {}
        self.parts: dict[Span, PartSpans | None] = {}  # part_spans, once each

    @cached_property
    def starts(self) -> list[int]:
        return line_starts(self.text)

    def offset(self, line: int, byte_column: int) -> int:
        """The offset in the text of 1-based `line`, UTF-8 byte `byte_column` (ast's)."""
        begin = self.starts[line - 1]
        if line not in self._encoded:
            end = self.starts[line] if line < len(self.starts) else len(self.text)
            row = self.text[begin:end]
            self._encoded[line] = None if row.isascii() else row.encode()
        encoded = self._encoded[line]
        if encoded is None:
            return begin + byte_column
        return begin + len(encoded[:byte_column].decode(errors="ignore"))


def may_nest_deeply(statement: ast.stmt) -> bool:
    """False when the statement is too short to nest MAX_NESTING deep (each level takes at
    least one character, and a few levels take none)."""
    if statement.end_lineno != statement.lineno or statement.end_col_offset is None:
        return True
    return 2 * (statement.end_col_offset - statement.col_offset) + 4 > MAX_NESTING


def depth(root: ast.AST, text: str, lines: LineOffsets | None = None) -> tuple[int, int]:
    """How deep `root` nests as libcst sees it (see MAX_NESTING), with an explicit stack, and
    how many parts the implicit string concatenation at the deepest point has (1 where it is
    no concatenation); stops counting past MAX_NESTING."""
    lines = lines or LineOffsets(text)
    deepest, deepest_parts, stack = 0, 1, [(root, 1)]
    while stack:
        node, level = stack.pop()
        parts = 1
        if isinstance(node, ast.BoolOp):
            level += len(node.values) - 2
        elif is_string(node):
            parts = string_parts(node, text, lines)
            level += parts - 1
        if level > deepest:
            deepest, deepest_parts = level, parts
        if deepest > MAX_NESTING:
            break
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest, deepest_parts


def is_string(node: ast.AST | None) -> TypeGuard[ast.Constant | ast.JoinedStr]:
    """Whether `node` is a string or bytes literal (an implicit concatenation is one), or an
    f-string."""
    return isinstance(node, ast.Constant | ast.JoinedStr) and isinstance(
        getattr(node, "value", ""), str | bytes
    )


def string_parts(node: ast.expr, text: str, lines: LineOffsets, shortest: int = 200) -> int:
    """How many string literals an implicit concatenation is made of (1 for a plain string);
    only ones of more than `shortest` parts are counted (each part takes at least two
    characters, so shorter spans are not tokenized)."""
    if (
        node.end_lineno == node.lineno
        and (node.end_col_offset or 0) - node.col_offset < 2 * shortest
    ):
        return 1
    spans = part_spans(node, text, lines)
    return max(1, len(spans or ()))


_STRING_TOKENS = (tokenize.STRING,)
_OPENING = tuple(
    getattr(tokenize, n) for n in ("FSTRING_START", "TSTRING_START") if hasattr(tokenize, n)
)
_CLOSING = tuple(
    getattr(tokenize, n) for n in ("FSTRING_END", "TSTRING_END") if hasattr(tokenize, n)
)


def part_spans(node: ast.expr, text: str, lines: LineOffsets) -> PartSpans | None:
    """Where each string literal of the (implicitly concatenated) string `node` starts and ends
    in `text`, from the tokenizer (the segment is tokenized inside parentheses, so that lines
    and their indentation inside it do not matter); None where it cannot be told."""
    span = node_span(node)
    if span not in lines.parts:
        lines.parts[span] = _tokenized_parts(node, text, lines)
    return lines.parts[span]


def _tokenized_parts(node: ast.expr, text: str, lines: LineOffsets) -> PartSpans | None:
    start = lines.offset(node.lineno, node.col_offset)
    end = lines.offset(node.end_lineno or node.lineno, node.end_col_offset or 0)
    wrapped = "(" + text[start:end] + ")"
    row_starts = line_starts(wrapped)
    rows = [wrapped[a:b] for a, b in zip(row_starts, [*row_starts[1:], len(wrapped)], strict=True)]

    def offset(row: int, column: int) -> int:
        return start - 1 + row_starts[row - 1] + column

    spans: PartSpans = []
    nested, opened = 0, 0
    try:
        for token in tokenize.generate_tokens(iter(rows).__next__):
            if token.type in _OPENING:
                if nested == 0:
                    opened = offset(*token.start)
                nested += 1
            elif token.type in _CLOSING:
                nested -= 1
                if nested == 0:
                    spans.append((opened, offset(*token.end)))
            elif token.type in _STRING_TOKENS and nested == 0:
                spans.append((offset(*token.start), offset(*token.end)))
    except (tokenize.TokenError, SyntaxError, IndexError):
        return None
    if not spans or spans[0][0] != start or spans[-1][1] != end:
        return None
    return spans
