"""Reading a config file's bytes into text, and writing text back in the same encoding."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from functools import cached_property

_LINE_END = re.compile(r"\r\n|\r|\n")


class SourceError(Exception):
    """The file cannot be read as Python source; `line`/`col` locate the problem (1-based)."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass(frozen=True)
class Source:
    """A config file's text with what is needed to write it back byte for byte."""

    path: str
    raw: bytes
    text: str
    encoding: str

    def encode(self, text: str) -> bytes:
        """`text` in this file's encoding (a UTF-8 BOM is kept by the `utf-8-sig` codec)."""
        return text.encode(self.encoding)

    def line_text(self, line: int) -> str:
        """The text of 1-based `line`, without its line ending ('' past the end)."""
        lines = self._lines
        return lines[line - 1] if 0 < line <= len(lines) else ""

    @cached_property
    def _lines(self) -> list[str]:
        # Python ends lines at \r\n, \r and \n only; str.splitlines also splits at form
        # feeds and other separators, which would shift every line number after them.
        return _LINE_END.split(self.text)


def decode_source(path: str, raw: bytes) -> Source:
    """Decode `raw` as Python would (BOM, PEP 263 coding declaration, else UTF-8).

    Raises SourceError for binary files, unknown or wrong encodings, naming the line.
    """
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise SourceError("binary file (contains a NUL byte), not a Python config", line)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise SourceError(f"bad coding declaration: {exc}", exc.lineno or 1) from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SourceError(
            f"cannot decode byte 0x{raw[exc.start]:02x} as {encoding}"
            " (save the file as UTF-8 or declare its encoding)",
            line,
            col,
        ) from None
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r} in coding declaration") from None
    return Source(path=path, raw=raw, text=text, encoding=encoding)


MAX_NESTING = 200


def check_syntax(text: str) -> ast.Module:
    """Parse `text` with CPython's own parser, as nanoGPT's `exec` would, and return the tree.

    Raises SourceError for a syntax error (with CPython's message, line and column) and for an
    expression nested deeper than MAX_NESTING levels: libcst's parser slows down sharply on
    deep nesting and can crash the process, so this runs before it.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise SourceError(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (RecursionError, MemoryError, ValueError):
        raise SourceError(f"expression nested too deeply to read (limit {MAX_NESTING})") from None
    for statement in tree.body:
        if _may_nest_deeply(statement) and _depth(statement) > MAX_NESTING:
            raise SourceError(
                f"expression nested more than {MAX_NESTING} levels deep, too deeply to read",
                statement.lineno,
                statement.col_offset + 1,
            )
    return tree


def _may_nest_deeply(statement: ast.stmt) -> bool:
    """False when the statement is too short to nest MAX_NESTING deep (each level of an
    expression takes at least one character, and a few levels take none)."""
    if statement.end_lineno != statement.lineno or statement.end_col_offset is None:
        return True
    return 2 * (statement.end_col_offset - statement.col_offset) + 4 > MAX_NESTING


def _depth(root: ast.AST) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def read_source(path: str) -> Source:
    """Read and decode the file at `path`; OSError becomes SourceError."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise SourceError(f"cannot read file: {exc.strerror or exc}") from None
    return decode_source(path, raw)
