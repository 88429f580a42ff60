"""Implicit string concatenations too long for libcst's parser, read in pieces.

libcst's native parser refuses an implicit concatenation of more than MAX_NESTING parts.
The text it is given instead (the "shadow") has one space or tab between two parts replaced
by `+` at least every SHADOW_PARTS parts: the same length, so every line and column stays
where it was, and the same string. In the tree, each such `+` is an ImplicitJoin, an
operator written back as the character it replaced, so the tree's code is the file's text
byte for byte (checked) and fixes, positions and diffs need nothing special."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import libcst as cst

from gptlint.text.decode import SourceError
from gptlint.text.nesting import (
    MAX_NESTING,
    LineOffsets,
    PartSpans,
    Span,
    depth,
    is_string,
    node_span,
    part_spans,
    string_parts,
)
from gptlint.text.parse import parse_text
from gptlint.text.positions import line_starts, statement_groups, statement_lines

SHADOW_PARTS = 2000
"""The most parts of an implicit string concatenation libcst is given as one piece."""

Join = tuple[int, str]
"""The offset of a space or tab gptlint replaces by `+`, and that character."""

Chain = tuple[Span, tuple[Join, ...]]
"""A cut concatenation: its ast span, and its joins in file order."""


@dataclass(frozen=True)
class ImplicitJoin(cst.Add):
    """The `+` gptlint put between two parts of an over-long implicit string concatenation
    (where the file has `character`, a space or a tab): it evaluates as `+` (the same string)
    and is written back as `character`."""

    character: str = " "

    def _get_token(self) -> str:
        return self.character

    def _visit_and_replace_children(self, visitor: Any) -> ImplicitJoin:
        changed = super()._visit_and_replace_children(visitor)
        return ImplicitJoin(changed.whitespace_before, changed.whitespace_after, self.character)


@dataclass(frozen=True)
class Pieces:
    """How one top-level statement (the `index`th, at `line`, `col`) has its over-long
    concatenations cut; `parts`: the most parts one of them has."""

    index: int
    line: int
    col: int
    parts: int
    chains: tuple[Chain, ...]

    @property
    def joins(self) -> list[Join]:
        return [join for _, joins in self.chains for join in joins]


def too_long(parts: int, line: int, col: int) -> SourceError:
    """The error for an implicit concatenation of `parts` parts that cannot be read."""
    return SourceError(
        f"implicit string concatenation of {parts:,} parts: valid Python, but more than"
        f" gptlint's parser (libcst) can read ({MAX_NESTING:,}), and no space or tab between"
        f" its parts at least every {SHADOW_PARTS:,} parts lets gptlint read it in pieces;"
        " this file is not linted (join the parts with a list and ''.join, or split the string)",
        line,
        col,
    )


def cut(index: int, statement: ast.stmt, text: str, lines: LineOffsets) -> Pieces | None:
    """Where to cut the implicit concatenations of more than SHADOW_PARTS parts in
    `statement`, the `index`th of the module; None where one cannot be cut (no space or tab
    between its parts for SHADOW_PARTS parts running)."""
    chains = []
    most = 0
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        if not is_string(node):
            stack.extend(ast.iter_child_nodes(node))
            continue
        if string_parts(node, text, lines, SHADOW_PARTS) <= SHADOW_PARTS:
            continue
        spans = part_spans(node, text, lines) or []
        cuts = _cuts(spans, text)
        if cuts is None:
            return None
        most = max(most, len(spans))
        chains.append((node_span(node), tuple((at, text[at]) for at in cuts)))
    if not chains:
        return None
    return Pieces(index, statement.lineno, statement.col_offset + 1, most, tuple(chains))


def _cuts(spans: PartSpans, text: str) -> list[int] | None:
    """Offsets of a space or tab between two parts (of the parts at `spans`) such that no
    piece between two of them has more than SHADOW_PARTS parts, cutting as late as possible;
    None where there is no such character."""
    cuts, first = [], 0
    while len(spans) - first > SHADOW_PARTS:
        for after in range(first + SHADOW_PARTS, first, -1):
            at = _blank(text, spans[after - 1][1], spans[after][0])
            if at is not None:
                break
        else:
            return None
        cuts.append(at)
        first = after
    return cuts


def _blank(text: str, begin: int, end: int) -> int | None:
    """The offset of the first space or tab in `text[begin:end]` (what separates two string
    literals: whitespace, comments, line continuations) outside a comment."""
    comment = False
    for at in range(begin, end):
        char = text[at]
        if comment:
            comment = char not in "\r\n"
        elif char == "#":
            comment = True
        elif char in " \t":
            return at
    return None


@dataclass(frozen=True)
class Joins:
    """How to read a text whose over-long concatenations are cut (`pieces`, one per
    statement that has some, in file order): `shadow_tree` is CPython's tree of its shadow
    text."""

    pieces: tuple[Pieces, ...]
    shadow_tree: ast.Module

    @classmethod
    def of(cls, text: str, tree: ast.Module, pieces: list[Pieces]) -> Joins:
        """The joins of `text` (CPython's tree of it is `tree`) cut at `pieces`. Raises
        SourceError (the concatenation is too long) unless CPython reads the shadow text as
        `tree` with each cut concatenation a chain of `+` over its pieces, no deeper than
        MAX_NESTING: then libcst reads it as the file means it."""
        shadow = _shadow_text(text, pieces)
        try:
            shadow_tree = ast.parse(shadow)
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            first = pieces[0]
            raise too_long(first.parts, first.line, first.col) from None
        lines = LineOffsets(shadow)
        for found in pieces:
            if (
                len(shadow_tree.body) != len(tree.body)
                or _spines(shadow_tree.body[found.index], found.chains) is None
                or depth(shadow_tree.body[found.index], shadow, lines)[0] > MAX_NESTING
            ):
                raise too_long(found.parts, found.line, found.col)
        return cls(tuple(pieces), shadow_tree)

    def parse(self, text: str) -> cst.Module:
        """libcst's tree of `text`, read from the shadow text, with each `+` gptlint put in
        an ImplicitJoin: its code is still `text` (checked: SourceError where not)."""
        first = self.pieces[0]
        refusal = too_long(first.parts, first.line, first.col)
        try:
            module = parse_text(_shadow_text(text, self.pieces))
        except cst.ParserSyntaxError:
            raise refusal from None
        return _with_joins(module, self.shadow_tree, text, self.pieces, refusal)


def _shadow_text(text: str, cuts: Iterable[Pieces]) -> str:
    """`text` with `+` at the offset of each join of `cuts`."""
    pieces, at = [], 0
    for offset, _ in sorted(join for found in cuts for join in found.joins):
        pieces += [text[at:offset], "+"]
        at = offset + 1
    return "".join([*pieces, text[at:]])


def _additions(root: ast.AST) -> list[ast.BinOp]:
    """The `+` operations in `root`, outside strings (an f-string's own expressions are not
    counted), outermost first, in file order: the order libcst visits them in."""
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            found.append(node)
        if not isinstance(node, ast.JoinedStr):
            stack.extend(ast.iter_child_nodes(node))
    found.sort(
        key=lambda n: (n.lineno, n.col_offset, -(n.end_lineno or 0), -(n.end_col_offset or 0))
    )
    return found


def _spines(statement: ast.AST, chains: tuple[Chain, ...]) -> dict[int, str] | None:
    """For the `+` operations in `statement` (numbered as `_additions` orders them), the
    character each one of gptlint's stands for; None unless each cut concatenation's span is
    a left-leaning chain of `+` over exactly its pieces (a concatenation followed by
    `.format(...)` or next to `*` is not: `+` binds less tightly than the concatenation did)."""
    additions = _additions(statement)
    number = {id(node): i for i, node in enumerate(additions)}
    by_span = {node_span(node): node for node in additions}
    chars: dict[int, str] = {}
    for span, joins in chains:
        node: ast.expr | None = by_span.get(span)
        for _, char in reversed(joins):  # the outermost `+` is the last join
            if not (isinstance(node, ast.BinOp) and is_string(node.right)):
                return None
            chars[number[id(node)]] = char
            node = node.left
        if not is_string(node):
            return None
    return chars


def _with_joins(
    module: cst.Module,
    tree: ast.Module,
    text: str,
    found: tuple[Pieces, ...],
    refusal: SourceError,
) -> cst.Module:
    """`module`, read from the shadow text (`tree` is CPython's reading of it), with each `+`
    gptlint put in an ImplicitJoin. The `+` operations of a statement are matched with
    CPython's by their order; only the
    statements that hold one of gptlint's are rewritten, and each must then write back
    exactly as the file has it."""
    groups = statement_groups(tree)  # libcst's statements: `;`-joined ones are one
    first_lines = statement_lines(tree)
    if len(groups) != len(module.body):
        raise refusal
    number_of = {id(s): n for n, group in enumerate(groups) for s in group}
    chains: dict[int, list[Chain]] = {}
    for pieces in found:
        chains.setdefault(number_of[id(tree.body[pieces.index])], []).extend(pieces.chains)
    starts = line_starts(text)
    body = list(module.body)
    for number, its_chains in chains.items():
        group = ast.Module(body=groups[number], type_ignores=[])
        chars = _spines(group, tuple(its_chains))
        if chars is None:
            raise refusal
        rejoin = _Rejoin(chars)
        statement = body[number].visit(rejoin)
        if not isinstance(statement, cst.SimpleStatementLine | cst.BaseCompoundStatement):
            raise refusal
        code = module.with_changes(header=(), body=(statement,), footer=()).code
        begin = starts[first_lines[number] - len(body[number].leading_lines) - 1]
        if chars or rejoin.count != len(_additions(group)) or not text.startswith(code, begin):
            raise refusal
        body[number] = statement
    return module.with_changes(body=body)


class _Rejoin(cst.CSTTransformer):
    """Numbers the `+` operations of a statement in the order it visits them (outside
    strings) and turns those in `chars` (number → the character the `+` stands for) into
    ImplicitJoin operators, removing them from `chars`."""

    def __init__(self, chars: dict[int, str]) -> None:
        super().__init__()
        self.chars = chars
        self.count = 0
        self.numbers: dict[cst.BinaryOperation, int] = {}

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> bool:
        if type(node.operator) is cst.Add:
            self.numbers[node] = self.count
            self.count += 1
        return True

    def visit_SimpleString(self, node: cst.SimpleString) -> bool:
        return False

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        return False

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        return False

    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BinaryOperation:
        number = self.numbers.get(original_node)
        operator = original_node.operator
        if number is None or not isinstance(operator, cst.Add):  # numbered: an Add
            return updated_node
        char = self.chars.pop(number, None)
        if char is None:
            return updated_node
        join = ImplicitJoin(operator.whitespace_before, operator.whitespace_after, char)
        return updated_node.with_changes(operator=join)
