"""Reading a config file's bytes into text, and writing text back in the same encoding."""

from __future__ import annotations

import ast
import bisect
import contextlib
import gc
import io
import os
import stat
import sys
import threading
import tokenize
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, TypeVar

import libcst as cst

from gptlint.text.positions import LINE_END, line_starts, statement_groups, statement_lines

T = TypeVar("T")


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
        return LINE_END.split(self.text)


MAX_SOURCE_BYTES = 2_000_000
"""Larger files are not configs; libcst would take minutes to parse one."""


def _too_large_to_lint(size: int) -> str:
    return (
        f"file too large to lint ({size:,} bytes; gptlint reads configs of up to"
        f" {MAX_SOURCE_BYTES:,} bytes)"
    )


def unread_reason(exc: OSError) -> str:
    """Why `read_regular` read no config, for a GPT000 message: too large (with the file's own
    size), or the system's reason."""
    if isinstance(exc, FileTooLarge):
        return _too_large_to_lint(exc.size)
    return f"cannot read file: {exc.strerror or exc}"


def decode_source(path: str, raw: bytes) -> Source:
    """Decode `raw` as Python would (BOM, PEP 263 coding declaration, else UTF-8).

    Raises SourceError for binary files, unknown or wrong encodings, naming the line.
    """
    if len(raw) > MAX_SOURCE_BYTES:
        raise SourceError(_too_large_to_lint(len(raw)))
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
own parser refuses implicit concatenations of more than 3,000 parts; longer ones are read in
pieces of at most SHADOW_PARTS (see `parse_module`)."""

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


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while parsing builds a large tree: a full collection goes
    through every object alive (the trees of earlier passes too), and building a tree of
    millions of nodes would start several (a quarter of the time linting and fixing a
    50,000-line file took). The trees have no cycles; garbage left meanwhile is collected
    once collection resumes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_VALIDATE_NODE = cst.CSTNode.__post_init__
_unvalidated_lock = threading.Lock()
_unvalidated_depth = 0


def _skip_validation(node: cst.CSTNode) -> None:
    """What a node built by libcst's parser runs in place of its validation."""


@contextlib.contextmanager
def _nodes_unvalidated() -> Iterator[None]:
    """libcst nodes made meanwhile skip their validation (`CSTNode.__post_init__`), which
    checks that a node holds what a parser could have given it: for the parser's own output
    it only repeats the parser's work (libcst notes as much beside it), and it costs a sixth
    of parsing a small config. Nested and concurrent uses are counted; the first to begin
    turns validation off and the last to end turns it back on."""
    global _unvalidated_depth
    with _unvalidated_lock:
        _unvalidated_depth += 1
        cst.CSTNode.__post_init__ = _skip_validation  # type: ignore[method-assign]
    try:
        yield
    finally:
        with _unvalidated_lock:
            _unvalidated_depth -= 1
            if not _unvalidated_depth:
                cst.CSTNode.__post_init__ = _VALIDATE_NODE  # type: ignore[method-assign]


def parse_text(text: str) -> cst.Module:
    """`cst.parse_module(text)`, made as fast as libcst allows: no cyclic collection while its
    nodes are made (`gc_paused`) and no validation of what the parser made."""
    with gc_paused(), _nodes_unvalidated():
        return cst.parse_module(text)


def check_syntax(text: str, path: str = "<config>") -> ast.Module:
    """Parse `text` with CPython's own parser and compile it (without running anything), as
    nanoGPT's `exec` would, and return the tree.

    Raises SourceError for a syntax error CPython reports when parsing or compiling (`return`
    outside a function, a misplaced `from __future__`, duplicate parameters ...) with its
    message, line and column, and for an expression nested deeper than MAX_NESTING levels,
    checked before libcst (whose parser is native and recursive) or the compiler sees it.
    An implicit string concatenation too long for libcst is no error where it can be read in
    pieces (see `parse_module`); the tree remembers where to cut it.
    """
    try:
        with gc_paused():
            tree = ast.parse(text)
    except SyntaxError as exc:
        raise SourceError(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (RecursionError, MemoryError, ValueError):
        raise SourceError("expression nested too deeply to read") from None
    lines = _LineStarts(text)
    pieces: list[_Pieces] = []
    for index, statement in enumerate(tree.body):
        if _may_nest_deeply(statement):
            depth, parts = _depth(statement, text, lines)
            if depth > MAX_NESTING and depth - parts + 1 <= MAX_NESTING:
                found = _pieces(index, statement, text, lines)
                if found is None:
                    raise _too_long(parts, statement.lineno, statement.col_offset + 1)
                pieces.append(found)
            elif depth > MAX_NESTING:
                raise SourceError(
                    f"expression nested {depth} levels deep (counting each `and`/`or` and each"
                    f" part of an implicit string concatenation), more than gptlint can read"
                    f" ({MAX_NESTING})",
                    statement.lineno,
                    statement.col_offset + 1,
                )
    if pieces:
        _SHADOWS[tree] = (pieces, _check_shadow(text, tree, pieces))
    try:
        with gc_paused():
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


def _depth(root: ast.AST, text: str, lines: _LineStarts | None = None) -> tuple[int, int]:
    """How deep `root` nests as libcst sees it (see MAX_NESTING), with an explicit stack, and
    how many parts the implicit string concatenation at the deepest point has (1 where it is
    no concatenation); stops counting past MAX_NESTING."""
    lines = lines or _LineStarts(text)
    deepest, deepest_parts, stack = 0, 1, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        parts = 1
        if isinstance(node, ast.BoolOp):
            depth += len(node.values) - 2
        elif _is_string(node):
            parts = _string_parts(node, text, lines)
            depth += parts - 1
        if depth > deepest:
            deepest, deepest_parts = depth, parts
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest, deepest_parts


def _is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant | ast.JoinedStr) and isinstance(
        getattr(node, "value", ""), str | bytes
    )


def _string_parts(node: ast.expr, text: str, lines: _LineStarts, shortest: int = 200) -> int:
    """How many string literals an implicit concatenation is made of (1 for a plain string);
    only ones of more than `shortest` parts are counted (each part takes at least two
    characters, so shorter spans are not tokenized)."""
    if (
        node.end_lineno == node.lineno
        and (node.end_col_offset or 0) - node.col_offset < 2 * shortest
    ):
        return 1
    spans = _part_spans(node, text, lines)
    return max(1, len(spans or ()))


Span = tuple[int, int, int, int]
"""An ast node's (lineno, col_offset, end_lineno, end_col_offset)."""


class _LineStarts:
    """Where each line of a text starts (lines end at \\r\\n, \\r or \\n, as Python's), and
    CPython's (line, UTF-8 byte column) positions as offsets into the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._encoded: dict[int, bytes | None] = {}
        self.parts: dict[Span, list[tuple[int, int]] | None] = {}  # _part_spans, once each

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

    def position(self, offset: int) -> tuple[int, int]:
        """(1-based line, 0-based column in characters) of `offset`, as libcst counts them."""
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1]


_STRING_TOKENS = (tokenize.STRING,)
_OPENING = tuple(
    getattr(tokenize, n) for n in ("FSTRING_START", "TSTRING_START") if hasattr(tokenize, n)
)
_CLOSING = tuple(
    getattr(tokenize, n) for n in ("FSTRING_END", "TSTRING_END") if hasattr(tokenize, n)
)


def _part_spans(node: ast.expr, text: str, lines: _LineStarts) -> list[tuple[int, int]] | None:
    """Where each string literal of the (implicitly concatenated) string `node` starts and ends
    in `text`, from the tokenizer (the segment is tokenized inside parentheses, so that lines
    and their indentation inside it do not matter); None where it cannot be told."""
    span = _span(node)
    if span not in lines.parts:
        lines.parts[span] = _tokenized_parts(node, text, lines)
    return lines.parts[span]


def _tokenized_parts(node: ast.expr, text: str, lines: _LineStarts) -> list[tuple[int, int]] | None:
    start = lines.offset(node.lineno, node.col_offset)
    end = lines.offset(node.end_lineno or node.lineno, node.end_col_offset or 0)
    wrapped = "(" + text[start:end] + ")"
    row_starts = line_starts(wrapped)
    rows = [wrapped[a:b] for a, b in zip(row_starts, [*row_starts[1:], len(wrapped)], strict=True)]

    def offset(row: int, column: int) -> int:
        return start - 1 + row_starts[row - 1] + column

    spans: list[tuple[int, int]] = []
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


# Implicit string concatenations too long for libcst's parser, read in pieces.
#
# libcst's native parser refuses an implicit concatenation of more than MAX_NESTING parts.
# The text it is given instead (the "shadow") has one space or tab between two parts replaced
# by `+` at least every SHADOW_PARTS parts: the same length, so every line and column stays
# where it was, and the same string. In the tree, each such `+` is an ImplicitJoin, an
# operator written back as the character it replaced, so the tree's code is the file's text
# byte for byte (checked) and fixes, positions and diffs need nothing special.

SHADOW_PARTS = 2000
"""The most parts of an implicit string concatenation libcst is given as one piece."""


@dataclass(frozen=True)
class ImplicitJoin(cst.Add):
    """The `+` gptlint put between two parts of an over-long implicit string concatenation
    (where the file has `character`, a space or a tab): it evaluates as `+` (the same string)
    and is written back as `character`."""

    character: str = " "

    def _get_token(self) -> str:
        return self.character

    def _visit_and_replace_children(self, visitor: Any) -> ImplicitJoin:
        return super()._visit_and_replace_children(visitor).with_changes(character=self.character)


@dataclass(frozen=True)
class _Pieces:
    """How one top-level statement's over-long concatenations are cut: for each, its ast span
    and the joins, in file order: the offset of each space or tab `+` replaces, and that
    character."""

    index: int
    line: int
    col: int
    parts: int
    chains: tuple[tuple[Span, tuple[tuple[int, str], ...]], ...]

    @property
    def joins(self) -> list[tuple[int, str]]:
        return [join for _, joins in self.chains for join in joins]


_SHADOWS: weakref.WeakKeyDictionary[ast.Module, tuple[list[_Pieces], ast.Module]] = (
    weakref.WeakKeyDictionary()
)
"""The cuts of the files `check_syntax` read, and CPython's tree of their shadow text."""


def _too_long(parts: int, line: int, col: int) -> SourceError:
    return SourceError(
        f"implicit string concatenation of {parts:,} parts: valid Python, but more than"
        f" gptlint's parser (libcst) can read ({MAX_NESTING:,}), and no space or tab between"
        f" its parts at least every {SHADOW_PARTS:,} parts lets gptlint read it in pieces;"
        " this file is not linted (join the parts with a list and ''.join, or split the string)",
        line,
        col,
    )


def _span(node: ast.AST) -> Span:
    return (node.lineno, node.col_offset, node.end_lineno or 0, node.end_col_offset or 0)


def _pieces(index: int, statement: ast.stmt, text: str, lines: _LineStarts) -> _Pieces | None:
    """Where to cut the implicit concatenations of more than SHADOW_PARTS parts in
    `statement`; None where one cannot be cut (no space or tab between its parts for
    SHADOW_PARTS parts running)."""
    chains = []
    most = 0
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        if not _is_string(node):
            stack.extend(ast.iter_child_nodes(node))
            continue
        if _string_parts(node, text, lines, SHADOW_PARTS) <= SHADOW_PARTS:
            continue
        spans = _part_spans(node, text, lines) or []
        cuts = _cuts(spans, text)
        if cuts is None:
            return None
        most = max(most, len(spans))
        chains.append((_span(node), tuple((at, text[at]) for at in cuts)))
    if not chains:
        return None
    return _Pieces(index, statement.lineno, statement.col_offset + 1, most, tuple(chains))


def _cuts(spans: list[tuple[int, int]], text: str) -> list[int] | None:
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


def _shadow_text(text: str, joins: list[tuple[int, str]]) -> str:
    """`text` with `+` at each join's offset."""
    pieces, at = [], 0
    for offset, _ in sorted(joins):
        pieces += [text[at:offset], "+"]
        at = offset + 1
    return "".join([*pieces, text[at:]])


def _check_shadow(text: str, tree: ast.Module, found: list[_Pieces]) -> ast.Module:
    """CPython's tree of the shadow text. Raises SourceError (the concatenation is too long)
    unless CPython reads it as `tree` with each cut concatenation a chain of `+` over its
    pieces, no deeper than MAX_NESTING: then libcst reads it as the file means it."""
    shadow = _shadow_text(text, [j for pieces in found for j in pieces.joins])
    try:
        shadow_tree = ast.parse(shadow)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        shadow_tree = None
    lines = _LineStarts(shadow)
    for pieces in found:
        if (
            shadow_tree is None
            or len(shadow_tree.body) != len(tree.body)
            or _spines(shadow_tree.body[pieces.index], pieces.chains) is None
            or _depth(shadow_tree.body[pieces.index], shadow, lines)[0] > MAX_NESTING
        ):
            raise _too_long(pieces.parts, pieces.line, pieces.col)
    return shadow_tree


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


def _spines(statement: ast.stmt, chains: tuple) -> dict[int, str] | None:
    """For the `+` operations in `statement` (numbered as `_additions` orders them), the
    character each one of gptlint's stands for; None unless each cut concatenation's span is
    a left-leaning chain of `+` over exactly its pieces (a concatenation followed by
    `.format(...)` or next to `*` is not: `+` binds less tightly than the concatenation did)."""
    additions = _additions(statement)
    number = {id(node): i for i, node in enumerate(additions)}
    by_span = {_span(node): node for node in additions}
    chars: dict[int, str] = {}
    for span, joins in chains:
        node = by_span.get(span)
        for _, char in reversed(joins):  # the outermost `+` is the last join
            if not (isinstance(node, ast.BinOp) and _is_string(node.right)):
                return None
            chars[number[id(node)]] = char
            node = node.left
        if not _is_string(node):
            return None
    return chars


def parse_module(text: str, tree: ast.Module | None = None) -> cst.Module:
    """libcst's tree of `text`, which `check_syntax` read as `tree`. An implicit string
    concatenation too long for libcst's parser is read in pieces joined by ImplicitJoin
    operators, and the tree's code is still `text` (checked: SourceError where not)."""
    shadow = _SHADOWS.get(tree) if tree is not None else None
    if shadow is None:
        reread = _reread(text, tree) if tree is not None else None
        if reread is not None:
            return reread
        return parse_text(text)
    found, shadow_tree = shadow
    first = found[0]
    refusal = _too_long(first.parts, first.line, first.col)
    try:
        module = parse_text(_shadow_text(text, [j for p in found for j in p.joins]))
    except cst.ParserSyntaxError:
        raise refusal from None
    return _with_joins(module, shadow_tree, text, found, refusal)


def _with_joins(
    module: cst.Module, tree: ast.Module, text: str, found: list[_Pieces], refusal: SourceError
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
    chains: dict[int, list] = {}
    for pieces in found:
        chains.setdefault(number_of[id(tree.body[pieces.index])], []).extend(pieces.chains)
    lines = _LineStarts(text)
    body = list(module.body)
    for number, its_chains in chains.items():
        group = ast.Module(body=groups[number], type_ignores=[])
        chars = _spines(group, tuple(its_chains))
        if chars is None:
            raise refusal
        rejoin = _Rejoin(chars)
        statement = body[number].visit(rejoin)
        code = module.with_changes(header=(), body=(statement,), footer=()).code
        begin = lines.starts[first_lines[number] - len(body[number].leading_lines) - 1]
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
        char = None if number is None else self.chars.pop(number, None)
        if char is None:
            return updated_node
        operator = original_node.operator
        join = ImplicitJoin(operator.whitespace_before, operator.whitespace_after, char)
        return updated_node.with_changes(operator=join)


# Reading a text again after a few of its statements changed (a pass of fixes).

_BASE: list[tuple[str, cst.Module, list[int]]] = []
MAX_REREAD_STATEMENTS = 200
"""More changed statements than this: the whole text is parsed again."""


@contextlib.contextmanager
def rereading(text: str, module: cst.Module, first_lines: list[int] | None) -> Iterator[None]:
    """While active, `parse_module` reads a text that differs from `text` (libcst's tree of it
    is `module`, its top-level statements start at `first_lines`, as `positions.statement_lines`
    gives them) only inside a few simple statement lines, with as many lines, by parsing just
    those statements and keeping `module`'s nodes for the others: the tree libcst would give
    for the whole text, for a fraction of the cost in a large file. A fix pass changes so
    little of a file."""
    if first_lines is None or len(first_lines) != len(module.body):
        yield
        return
    _BASE.append((text, module, first_lines))
    try:
        yield
    finally:
        _BASE.pop()


def _reread(text: str, tree: ast.Module) -> cst.Module | None:
    """`text`'s tree (`tree` is CPython's) from the `rereading` base where the changes allow,
    else None.

    Every statement is one run of whole lines: its leading (comment and blank) lines, then
    its own. The header above the first statement, the footer below the last and every
    statement whose lines are unchanged are kept; a changed statement must be a simple
    statement line (no indented block, whose comments could move between statements) whose
    leading lines did not change, and read alone must give one such statement with as many
    leading lines, no footer and the file's line ending. Every statement must start on the
    line CPython's tree says it starts on."""
    if not _BASE or text.endswith("\r"):
        return None
    old_text, module, first_lines = _BASE[-1]
    if text == old_text:
        return module
    old, new = _Lines(old_text), _Lines(text)
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
        if (
            len(alone.body) != 1
            or not isinstance(alone.body[0], cst.SimpleStatementLine)
            or alone.footer
            or alone.default_newline != module.default_newline
            or alone.has_trailing_newline != (module.has_trailing_newline or not last)
            or len(alone.header) + len(alone.body[0].leading_lines) != lead
        ):
            return None
        new_body[index] = alone.body[0].with_changes(
            leading_lines=(*alone.header, *alone.body[0].leading_lines)
        )
    return module.with_changes(body=new_body)


class _Lines:
    """A text's lines, 1-based (as Python ends them: \\r\\n, \\r or \\n)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self.starts = _LineStarts(text).starts
        ends_line = text.endswith(("\n", "\r")) or not text
        self.count = len(self.starts) - 1 if ends_line else len(self.starts)

    def text(self, first: int, stop: int) -> str:
        """Lines `first` to `stop` (not included)."""
        return self._text[self._start(first) : self._start(stop)]

    def _start(self, line: int) -> int:
        return self.starts[line - 1] if line <= len(self.starts) else len(self._text)


class NotRegularFile(OSError):
    """A path that names (or links to) a FIFO, device or socket: never read."""


class FileTooLarge(OSError):
    """A file holding more bytes than the reader's limit: not read. `size` is its size."""

    def __init__(self, size: int) -> None:
        super().__init__(f"file too large ({size:,} bytes)")
        self.size = size


def real_folder(path: Path) -> Path:
    """The folder holding `path` with every link resolved (`path.resolve().parent`). Each
    folder is resolved once per process: a run over a thousand configs looks up a few."""
    name = os.fspath(path)
    if ".." in path.parts or os.path.islink(name):  # resolved in order, link by link
        return path.resolve().parent
    return _real_directory(os.path.dirname(os.path.abspath(name)))


@lru_cache(maxsize=1024)
def _real_directory(directory: str) -> Path:
    return Path(directory).resolve()


def read_regular(path: str | os.PathLike[str], limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of the regular file at `path` (`open_regular`); FileTooLarge, with the
    file's size, where it holds more than `limit`."""
    with open_regular(path) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > limit:
            raise FileTooLarge(size)
        data = stream.read(limit + 1)
        if len(data) > limit:  # it grew since fstat
            raise FileTooLarge(max(len(data), os.fstat(stream.fileno()).st_size))
        return data


def open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    """The regular file at `path` (a symbolic link is followed), open for reading. A FIFO,
    device or socket raises NotRegularFile without blocking: the file is opened non-blocking
    and checked with fstat, so a path swapped for a FIFO after a check cannot hang a read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file ({_kind(mode)}), skipped")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


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
        raise SourceError(unread_reason(exc)) from None
    return decode_source(path, raw)
