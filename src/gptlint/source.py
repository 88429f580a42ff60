"""Reading a config file's bytes into text, and writing text back in the same encoding."""

from __future__ import annotations

import ast
import io
import os
import re
import stat
import sys
import threading
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

T = TypeVar("T")

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


MAX_SOURCE_BYTES = 2_000_000
"""Larger files are not configs; libcst would take minutes to parse one."""


def decode_source(path: str, raw: bytes) -> Source:
    """Decode `raw` as Python would (BOM, PEP 263 coding declaration, else UTF-8).

    Raises SourceError for binary files, unknown or wrong encodings, naming the line.
    """
    if len(raw) > MAX_SOURCE_BYTES:
        raise SourceError(
            f"file too large to lint ({len(raw):,} bytes; gptlint reads configs of up to"
            f" {MAX_SOURCE_BYTES:,} bytes)"
        )
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


MAX_NESTING = 3000
"""How deep an expression may nest as libcst builds it, where every `or`/`and` and every part
of an implicit string concatenation is one more level (CPython keeps those flat). libcst's
own parser refuses implicit concatenations of a little over 3,000 parts."""

DEEP_STACK_BYTES = 512 << 20
DEEP_RECURSION_LIMIT = 60_000
_deep = threading.local()


def run_deep(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, run where recursion MAX_NESTING levels deep fits: in a thread with a
    large stack and a raised recursion limit (libcst's parser, visitors and positions and the
    evaluator all recurse once per level of nesting). Already there: called directly."""
    if getattr(_deep, "active", False):
        return function(*args)
    outcome: list[Any] = []

    def target() -> None:
        _deep.active = True
        try:
            outcome.append((True, function(*args)))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    with _deep_lock:
        previous_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous_limit, DEEP_RECURSION_LIMIT))
        previous_stack = threading.stack_size(DEEP_STACK_BYTES)
        try:
            thread = threading.Thread(target=target, name="gptlint-deep", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous_stack)
    try:
        thread.join()
    finally:  # the main thread's stack is small: its limit goes back to what it was
        sys.setrecursionlimit(previous_limit)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


_deep_lock = threading.Lock()


def check_syntax(text: str, path: str = "<config>") -> ast.Module:
    """Parse `text` with CPython's own parser and compile it (without running anything), as
    nanoGPT's `exec` would, and return the tree.

    Raises SourceError for a syntax error CPython reports when parsing or compiling (`return`
    outside a function, a misplaced `from __future__`, duplicate parameters ...) with its
    message, line and column, and for an expression nested deeper than MAX_NESTING levels,
    checked before libcst (whose parser is native and recursive) or the compiler sees it.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise SourceError(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (RecursionError, MemoryError, ValueError):
        raise SourceError("expression nested too deeply to read") from None
    for statement in tree.body:
        if _may_nest_deeply(statement):
            depth, parts = _depth(statement, text)
            if depth > MAX_NESTING and depth - parts + 1 <= MAX_NESTING:
                raise SourceError(
                    f"implicit string concatenation of {parts:,} parts: valid Python, but more"
                    f" than gptlint's parser (libcst) can read ({MAX_NESTING:,}); this file is"
                    " not linted (join the parts with a list and ''.join, or split the string)",
                    statement.lineno,
                    statement.col_offset + 1,
                )
            if depth > MAX_NESTING:
                raise SourceError(
                    f"expression nested {depth} levels deep (counting each `and`/`or` and each"
                    f" part of an implicit string concatenation), more than gptlint can read"
                    f" ({MAX_NESTING})",
                    statement.lineno,
                    statement.col_offset + 1,
                )
    try:
        compile(tree, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise SourceError(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise SourceError(f"Python cannot compile this file: {type(exc).__name__}") from None
    return tree


def _may_nest_deeply(statement: ast.stmt) -> bool:
    """False when the statement is too short to nest MAX_NESTING deep (each level takes at
    least one character, and a few levels take none)."""
    if statement.end_lineno != statement.lineno or statement.end_col_offset is None:
        return True
    return 2 * (statement.end_col_offset - statement.col_offset) + 4 > MAX_NESTING


def _depth(root: ast.AST, text: str) -> tuple[int, int]:
    """How deep `root` nests as libcst sees it (see MAX_NESTING), with an explicit stack, and
    how many parts the implicit string concatenation at the deepest point has (1 where it is
    no concatenation); stops counting past MAX_NESTING."""
    deepest, deepest_parts, stack = 0, 1, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        parts = 1
        if isinstance(node, ast.BoolOp):
            depth += len(node.values) - 2
        elif isinstance(node, ast.Constant | ast.JoinedStr) and isinstance(
            getattr(node, "value", ""), str | bytes
        ):
            parts = _string_parts(node, text)
            depth += parts - 1
        if depth > deepest:
            deepest, deepest_parts = depth, parts
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest, deepest_parts


def _string_parts(node: ast.expr, text: str) -> int:
    """How many string literals an implicit concatenation is made of (1 for a plain string);
    only long ones are tokenized, since each part takes at least two characters."""
    if node.end_lineno == node.lineno and (node.end_col_offset or 0) - node.col_offset < 2 * 200:
        return 1
    segment = ast.get_source_segment(text, node) or ""
    if len(segment) < 400:
        return 1
    try:
        tokens = tokenize.generate_tokens(io.StringIO(segment).readline)
        return max(1, sum(1 for t in tokens if t.type in (tokenize.STRING, _FSTRING_START)))
    except (tokenize.TokenError, SyntaxError):
        return 1


_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)


MAX_READ_BYTES = 16_000_000


class NotRegularFile(OSError):
    """A path that names (or links to) a FIFO, device or socket: never read."""


def read_regular(path: str | os.PathLike[str], limit: int = MAX_READ_BYTES) -> bytes:
    """The bytes of the regular file at `path` (a symbolic link is followed), at most `limit`
    and one more (so that the caller can tell a file is too large). A FIFO, device or socket
    raises NotRegularFile without blocking: the file is opened non-blocking and checked with
    fstat, so a path swapped for a FIFO after a check cannot hang the read either."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file ({_kind(mode)}), skipped")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"


def read_source(path: str) -> Source:
    """Read and decode the file at `path`; OSError becomes SourceError."""
    try:
        raw = read_regular(path)
    except OSError as exc:
        raise SourceError(f"cannot read file: {exc.strerror or exc}") from None
    return decode_source(path, raw)
