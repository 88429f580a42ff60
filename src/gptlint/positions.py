"""Where nodes are, computed one top-level statement at a time.

libcst's PositionProvider regenerates the code of the whole module, which costs more than
parsing it; a diagnostic needs the position of one node. CPython's parser (already run on
every file by `source.check_syntax`) gives each top-level statement's first line, so only the
statement that holds the node is regenerated, and its lines are shifted into place.
"""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider


def statement_lines(tree: ast.Module) -> list[int]:
    """The first line of each top-level statement, as libcst splits the module: statements
    joined by `;` on one line are one libcst statement, and decorators open a definition."""
    lines: list[int] = []
    for statement in tree.body:
        decorators = getattr(statement, "decorator_list", ())
        first = min([statement.lineno, *(d.lineno for d in decorators)])
        if not lines or lines[-1] != first:
            lines.append(first)
    return lines


class StatementPositions:
    """Positions in `module` (1-based lines, 0-based columns), one statement at a time."""

    def __init__(self, module: cst.Module, first_lines: list[int]) -> None:
        self.module = module
        self.first_lines = first_lines
        self._cache: dict[int, tuple[dict[cst.CSTNode, CodeRange], int]] = {}

    def position(self, node: cst.CSTNode, index: int) -> CodeRange:
        """Where `node`, inside top-level statement number `index`, is in the file."""
        quick = self._leading_name(node, index)
        if quick is not None:
            return quick
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

    def _statement(self, index: int) -> tuple[dict[cst.CSTNode, CodeRange], int]:
        if index not in self._cache:
            statement = self.module.body[index]
            alone = self.module.with_changes(header=(), body=(statement,), footer=())
            ranges = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
            shift = self.first_lines[index] - len(statement.leading_lines) - 1
            self._cache[index] = (dict(ranges), shift)
        return self._cache[index]
