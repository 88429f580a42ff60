"""CPython's checks of a config's text: it parses and compiles (as nanoGPT's `exec` would,
without running anything), and nests no deeper than gptlint can read."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from gptlint.text.decode import SourceError
from gptlint.text.deep import gc_paused
from gptlint.text.joins import Joins, Pieces, cut, too_long
from gptlint.text.nesting import MAX_NESTING, LineOffsets, depth, may_nest_deeply


@dataclass(frozen=True, eq=False)
class CheckedText:
    """A text CPython parsed and compiled: `tree` is CPython's tree of it, and `joins` how
    to read its implicit string concatenations too long for libcst in pieces (None where it
    has none). `tree.parse_module` reads it with libcst."""

    text: str
    tree: ast.Module
    joins: Joins | None


def check_syntax(text: str, path: str = "<config>") -> CheckedText:
    """Parse `text` with CPython's own parser and compile it (without running anything), as
    nanoGPT's `exec` would.

    Raises SourceError for a syntax error CPython reports when parsing or compiling (`return`
    outside a function, a misplaced `from __future__`, duplicate parameters ...) with its
    message, line and column, and for an expression nested deeper than MAX_NESTING levels,
    checked before libcst (whose parser is native and recursive) or the compiler sees it.
    An implicit string concatenation too long for libcst is no error where it can be read in
    pieces (`joins`).
    """
    try:
        with gc_paused():
            tree = ast.parse(text)
    except SyntaxError as exc:
        raise SourceError(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (RecursionError, MemoryError, ValueError):
        raise SourceError("expression nested too deeply to read") from None
    lines = LineOffsets(text)
    pieces: list[Pieces] = []
    for index, statement in enumerate(tree.body):
        if may_nest_deeply(statement):
            deepest, parts = depth(statement, text, lines)
            if deepest > MAX_NESTING and deepest - parts + 1 <= MAX_NESTING:
                found = cut(index, statement, text, lines)
                if found is None:
                    raise too_long(parts, statement.lineno, statement.col_offset + 1)
                pieces.append(found)
            elif deepest > MAX_NESTING:
                raise SourceError(
                    f"expression nested {deepest} levels deep (counting each `and`/`or` and"
                    f" each part of an implicit string concatenation), more than gptlint can"
                    f" read ({MAX_NESTING})",
                    statement.lineno,
                    statement.col_offset + 1,
                )
    joins = Joins.of(text, tree, pieces) if pieces else None
    try:
        with gc_paused():
            compile(tree, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise SourceError(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise SourceError(f"Python cannot compile this file: {type(exc).__name__}") from None
    return CheckedText(text, tree, joins)
