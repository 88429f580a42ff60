"""Applying fixes: rewrite only the targeted nodes and regenerate the file from its libcst tree,
which reproduces every other byte (comments, quotes, spacing, newlines) as it was."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst

from gptlint.lint.diagnostics import Diagnostic, Edit
from gptlint.lint.linter import LintResult, lint_source
from gptlint.nanogpt.configfile import ConfigFile
from gptlint.settings.table import Settings
from gptlint.text.decode import Source
from gptlint.text.deep import gc_paused
from gptlint.text.reread import Reparser

MAX_PASSES = 10


@dataclass
class FixOutcome:
    """A file after fixing: its new bytes, how many fixes were applied, what remains."""

    source: Source
    fixed: bytes
    applied: int
    remaining: LintResult

    @property
    def changed(self) -> bool:
        return self.fixed != self.source.raw

    def diff(self, name: str) -> bytes:
        """The fix as a unified diff in the file's own bytes (its encoding, a BOM kept as part
        of the first line), so that `patch` turns the file into exactly the fixed one; the
        headers name the file in its name's own bytes (`diff_name`)."""
        encoding = "utf-8" if self.source.encoding == "utf-8-sig" else self.source.encoding
        return unified_diff(name, self.source.raw, self.fixed, encoding)


def unified_diff(name: str, before: bytes, after: bytes, encoding: str) -> bytes:
    """A file's fix as a unified diff in its own bytes (`FixOutcome.diff`; a run script's
    fix too), headed by `diff_name`."""
    body = _hunks(before.decode(encoding), after.decode(encoding))
    header = b"--- %s\n+++ %s\n" % (diff_name(name), diff_name(name))
    return header + body.encode(encoding, errors="backslashreplace")


def applicable(diagnostic: Diagnostic, unsafe: bool) -> bool:
    """Whether `--fix` (with `--unsafe-fixes` if `unsafe`) applies this diagnostic's fix."""
    return diagnostic.fix is not None and (unsafe or diagnostic.fix.safety == "safe")


def fix_source(
    source: Source,
    settings: Settings,
    unsafe: bool = False,
    schema_path: Path | None = None,
    result: LintResult | None = None,
) -> FixOutcome:
    """Apply fixes to `source` until none is left to apply (at most MAX_PASSES passes); a
    fix that touches a node another fix already claimed waits for the next pass. A pass whose
    result would not parse is dropped, so a faulty fix never breaks a file. `result` is the
    lint of `source` where the caller has it already. Each pass's text is linted again in
    full, but libcst reads again only the statements the pass changed (a `Reparser` of the
    text before the pass), and no cyclic garbage collection goes through the file's trees
    meanwhile."""
    current, applied = source, 0
    if result is None:
        result = lint_source(current, settings, schema_path)
    for _ in range(MAX_PASSES):
        chosen = chosen_fixes(result.diagnostics, unsafe)
        if result.file is None or not chosen:
            break
        text = apply_fixes(result.file, chosen)
        if text == current.text:
            break
        candidate = replace(current, text=text, raw=current.encode(text))
        reparser = Reparser(current.text, result.file.module, result.file.statement_lines)
        with gc_paused():
            after = lint_source(candidate, settings, schema_path, reparser=reparser)
        if after.file is None:
            break
        current, result, applied = candidate, after, applied + len(chosen)
    return FixOutcome(source, current.raw, applied, result)


def apply_fixes(file: ConfigFile, chosen: list[Diagnostic]) -> str:
    """The file's text with the fixes of `chosen` (from `chosen_fixes`) applied: the tree is
    regenerated, so only the nodes the fixes name change."""
    edits = {edit.old: edit for d in chosen if d.fix is not None for edit in d.fix.edits}
    rewriter = _Rewriter(edits)
    return file.code_with(lambda node: node.visit(rewriter), edits)


def chosen_fixes(diagnostics: list[Diagnostic], unsafe: bool) -> list[Diagnostic]:
    """The diagnostics whose fixes one pass applies: applicable ones, skipping any whose edits
    touch a node an earlier one already claimed."""
    claimed: set[int] = set()
    chosen = []
    for diagnostic in diagnostics:
        fix = diagnostic.fix
        if fix is None or not applicable(diagnostic, unsafe):
            continue
        ids = {id(edit.old) for edit in fix.edits}
        if ids & claimed:
            continue
        claimed |= ids
        chosen.append(diagnostic)
    return chosen


class _Rewriter(cst.CSTTransformer):
    def __init__(self, edits: dict[cst.CSTNode, Edit]) -> None:
        super().__init__()
        self.edits = edits

    def on_leave(self, original_node, updated_node):
        edit = self.edits.get(original_node)
        return updated_node if edit is None else edit.rewrite(updated_node)


def _hunks(before: str, after: str) -> str:
    """The hunks of a unified diff of a file's text before and after fixing, as `patch -p0`
    applies them (the headers are `diff_name`'s): line endings are kept, and a last line
    without a newline is marked `\\ No newline at end of file`."""
    lines = list(difflib.unified_diff(_lines(before), _lines(after)))[2:]  # past ---/+++
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def diff_name(name: str) -> bytes:
    """`name` as a diff header writes it for `patch -p0`, in the name's own bytes (a name that
    is not UTF-8 is not re-encoded): as it is; followed by a tab where it holds a space (patch
    reads a name up to a tab, else up to whitespace); or, where it holds a tab, newline, quote,
    backslash or other control character, quoted with C escapes, as GNU diff writes it."""
    raw = os.fsencode(name)
    if any(byte < 0x20 or byte in b'"\\\x7f' for byte in raw):
        return b'"%s"' % b"".join(_escaped(byte) for byte in raw)
    return raw + b"\t" if b" " in raw else raw


def _escaped(byte: int) -> bytes:
    if byte in b'"\\':
        return b"\\" + bytes([byte])
    return b"\\%03o" % byte if byte < 0x20 or byte == 0x7F else bytes([byte])


def _lines(text: str) -> list[str]:
    """`text` split after each `\\n` only (str.splitlines also splits at form feeds and other
    characters that Python source treats as part of a line)."""
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])
