"""Applying fixes: rewrite only the targeted nodes and regenerate the file from its libcst tree,
which reproduces every other byte (comments, quotes, spacing, newlines) as it was."""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst

from gptlint.configfile import ConfigFile
from gptlint.diagnostics import Diagnostic, Edit
from gptlint.lint import LintResult, lint_source
from gptlint.settings import Settings
from gptlint.source import Source

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
        of the first line), so that `patch` turns the file into exactly the fixed one."""
        encoding = "utf-8" if self.source.encoding == "utf-8-sig" else self.source.encoding
        before, after = self.source.raw.decode(encoding), self.fixed.decode(encoding)
        return unified_diff(name, before, after).encode(encoding, errors="backslashreplace")


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
    lint of `source` where the caller has it already."""
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
        after = lint_source(candidate, settings, schema_path)
        if after.file is None:
            break
        current, result, applied = candidate, after, applied + len(chosen)
    return FixOutcome(source, current.raw, applied, result)


def apply_fixes(file: ConfigFile, chosen: list[Diagnostic]) -> str:
    """The file's text with the fixes of `chosen` (from `chosen_fixes`) applied: the tree is
    regenerated, so only the nodes the fixes name change."""
    edits = {edit.old: edit for diagnostic in chosen for edit in diagnostic.fix.edits}
    return file.module.visit(_Rewriter(edits)).code


def chosen_fixes(diagnostics: list[Diagnostic], unsafe: bool) -> list[Diagnostic]:
    """The diagnostics whose fixes one pass applies: applicable ones, skipping any whose edits
    touch a node an earlier one already claimed."""
    claimed: set[int] = set()
    chosen = []
    for diagnostic in diagnostics:
        if not applicable(diagnostic, unsafe):
            continue
        ids = {id(edit.old) for edit in diagnostic.fix.edits}
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


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff of a file's text before and after fixing, as `patch -p0` applies it:
    both headers name the file (as Ruff's `--diff` does), line endings are kept, and a last
    line without a newline is marked `\\ No newline at end of file`."""
    lines = difflib.unified_diff(_lines(before), _lines(after), fromfile=path, tofile=path)
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _lines(text: str) -> list[str]:
    """`text` split after each `\\n` only (str.splitlines also splits at form feeds and other
    characters that Python source treats as part of a line)."""
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


def write_atomically(path: Path, data: bytes) -> None:
    """Replace the contents of `path` (of the file it links to, for a symbolic link) with
    `data` in one step, keeping its permission bits: write a temporary file beside it, flush
    it to disk, then rename it over the original."""
    path = path.resolve()
    mode = stat.S_IMODE(path.stat().st_mode)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
