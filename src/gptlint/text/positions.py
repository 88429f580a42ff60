"""Where nodes are, computed one top-level statement at a time.

libcst's PositionProvider regenerates the code of the whole module, which costs more than
parsing it; a diagnostic needs the position of one node. CPython's parser (already run on
every file by `syntax.check_syntax`) gives each top-level statement's first line, so only the
statement that holds the node is regenerated, and its lines are shifted into place.
"""

from __future__ import annotations

import ast
import bisect
import collections
import functools
import re
from collections.abc import Callable, Collection

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider


def small_starts(tree: ast.Module) -> list[tuple[int, int]]:
    """Where each top-level statement starts in CPython's parse: (1-based line, column in
    UTF-8 bytes). Statements joined by `;` are separate here (one libcst line of them)."""
    return [(statement.lineno, statement.col_offset) for statement in tree.body]


def statement_groups(tree: ast.Module) -> list[list[ast.stmt]]:
    """CPython's top-level statements grouped as libcst splits the module: statements joined
    by `;` on one line are one libcst statement (decorators open a definition)."""
    groups: list[list[ast.stmt]] = []
    for statement in tree.body:
        if groups and _first_line(groups[-1][0]) == _first_line(statement):
            groups[-1].append(statement)
        else:
            groups.append([statement])
    return groups


def _first_line(statement: ast.stmt) -> int:
    decorators = getattr(statement, "decorator_list", ())
    return min([statement.lineno, *(d.lineno for d in decorators)])


def statement_spans(tree: ast.Module) -> list[tuple[int, int]]:
    """The first and last line of each top-level statement (`statement_groups`)."""
    return [
        (_first_line(group[0]), max(s.end_lineno or s.lineno for s in group))
        for group in statement_groups(tree)
    ]


def statement_lines(tree: ast.Module) -> list[int]:
    """The first line of each top-level statement (`statement_spans`)."""
    return [first for first, _ in statement_spans(tree)]


LINE_END = re.compile(r"\r\n|\r|\n")
"""Where Python ends a line: \\r\\n, \\r or \\n (str.splitlines also splits at form feeds)."""


def line_starts(text: str) -> list[int]:
    """The offset where each line of `text` starts (lines end as `LINE_END` matches)."""
    return [0, *(m.end() for m in LINE_END.finditer(text))]


def statements_matching(
    text: str,
    first_lines: list[int] | None,
    statements: int,
    pattern: re.Pattern[str],
    wanted: Collection[str] | None = None,
) -> dict[int, collections.Counter[str]] | None:
    """The top-level statements whose text holds a match of `pattern` (only matches in
    `wanted`, where given), each with how often each match occurs: found in the text, without
    walking the tree. A statement's text runs from its first line (`first_lines`, as
    `statement_lines` gives them) to the next statement's, comments and strings included, so
    a node of a statement is in that text; matches above the first statement are not
    counted. None where the lines do not number the module's `statements` (then any
    statement may hold one)."""
    if first_lines is None or len(first_lines) != statements:
        return None
    starts = line_starts(text)
    found: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for match in pattern.finditer(text):
        word = match.group()
        if wanted is not None and word not in wanted:
            continue
        line = bisect.bisect_right(starts, match.start())
        index = bisect.bisect_right(first_lines, line) - 1
        if index >= 0:
            found[index][word] += 1
    return found


class StatementPositions:
    """Positions in `module` (1-based lines, 0-based columns), one statement at a time."""

    def __init__(
        self,
        module: cst.Module,
        first_lines: list[int],
        starts: list[tuple[int, int]] | None = None,
        line_text: Callable[[int], str] | None = None,
    ) -> None:
        self.module = module
        self.first_lines = first_lines
        self.starts = starts
        self.line_text = line_text
        self._cache: dict[int, tuple[dict[cst.CSTNode, CodeRange], int]] = {}
        self._small_cache: dict[int, tuple[dict[cst.CSTNode, CodeRange], int, int]] = {}

    def position(
        self, node: cst.CSTNode, index: int, small: cst.BaseSmallStatement | None = None
    ) -> CodeRange:
        """Where `node`, inside top-level statement number `index` (and inside its small
        statement `small` where known), is in the file."""
        quick = self._leading_name(node, index)
        if quick is not None:
            return quick
        if small is not None:
            where = self._in_small(node, index, small)
            if where is not None:
                return where
        ranges, shift = self._statement(index)
        where = ranges[node]
        if not shift:
            return where
        return CodeRange(
            CodePosition(where.start.line + shift, where.start.column),
            CodePosition(where.end.line + shift, where.end.column),
        )

    def _leading_name(self, node: cst.CSTNode, index: int) -> CodeRange | None:
        """The position of `node` without regenerating the statement, where `node` is the bare
        name a top-level statement line starts with (`n_head` in `n_head = 8`): the most
        often located node, and a statement can be long (a 5 MB list)."""
        if not isinstance(node, cst.Name) or node.lpar:
            return None
        statement = self.module.body[index]
        if not isinstance(statement, cst.SimpleStatementLine) or not statement.body:
            return None
        first = statement.body[0]
        if isinstance(first, cst.Assign):
            target = first.targets[0].target
        elif isinstance(first, cst.AnnAssign | cst.AugAssign):
            target = first.target
        else:
            return None
        if target is not node:
            return None
        line = self.first_lines[index]
        return CodeRange(CodePosition(line, 0), CodePosition(line, len(node.value)))

    def _in_small(
        self, node: cst.CSTNode, index: int, small: cst.BaseSmallStatement
    ) -> CodeRange | None:
        """The position of `node` from its small statement alone, for a line of statements
        joined by `;` (regenerating the whole line for each of 100,000 statements on it would
        be quadratic): the small statement is regenerated by itself and moved to where
        CPython's parser says it starts. None where that start is not known."""
        key = id(small)
        if key not in self._small_cache:
            start = self._small_start(index, small)
            if start is None:
                return None
            alone = self.module.with_changes(
                header=(), body=(cst.SimpleStatementLine(body=(small,)),), footer=()
            )
            ranges = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
            self._small_cache[key] = (dict(ranges), *start)
        ranges, line, column = self._small_cache[key]
        where = ranges.get(node)
        if where is None:
            return None
        return CodeRange(_moved(where.start, line, column), _moved(where.end, line, column))

    def _small_start(self, index: int, small: cst.BaseSmallStatement) -> tuple[int, int] | None:
        """(line, column in characters) where `small` starts, from CPython's positions."""
        if self.starts is None or self.line_text is None:
            return None
        number = self._ast_numbers.get(id(small))
        if number is None:
            return None
        line, byte_column = self.starts[number]
        text = self.line_text(line)
        column = byte_column if text.isascii() else len(text.encode()[:byte_column].decode())
        return line, column

    @functools.cached_property
    def _ast_numbers(self) -> dict[int, int]:
        """CPython's statement number of each top-level small statement (by id), where the
        two parsers' statements line up; empty where they do not."""
        numbers: dict[int, int] = {}
        count = 0
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    numbers[id(small)] = count
                    count += 1
            else:
                count += 1
        return numbers if self.starts is not None and count == len(self.starts) else {}

    def _statement(self, index: int) -> tuple[dict[cst.CSTNode, CodeRange], int]:
        if index not in self._cache:
            statement = self.module.body[index]
            alone = self.module.with_changes(header=(), body=(statement,), footer=())
            ranges = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
            shift = self.first_lines[index] - len(statement.leading_lines) - 1
            self._cache[index] = (dict(ranges), shift)
        return self._cache[index]


def _moved(position: CodePosition, line: int, column: int) -> CodePosition:
    """`position` in a small statement regenerated alone, moved to start at (line, column)."""
    if position.line == 1:
        return CodePosition(line, position.column + column)
    return CodePosition(position.line + line - 1, position.column)
