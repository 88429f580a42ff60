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


def applicable(diagnostic: Diagnostic, unsafe: bool) -> bool:
    """Whether `--fix` (with `--unsafe-fixes` if `unsafe`) applies this diagnostic's fix."""
    return diagnostic.fix is not None and (unsafe or diagnostic.fix.safety == "safe")


def fix_source(
    source: Source, settings: Settings, unsafe: bool = False, schema_path: Path | None = None
) -> FixOutcome:
    """Apply fixes to `source` until none is left to apply (at most MAX_PASSES passes); a
    fix that touches a node another fix already claimed waits for the next pass."""
    current, applied = source, 0
    result = lint_source(current, settings, schema_path)
    for _ in range(MAX_PASSES):
        if result.file is None:
            break
        chosen = _non_conflicting([d for d in result.diagnostics if applicable(d, unsafe)])
        if not chosen:
            break
        edits = {edit.old: edit for diagnostic in chosen for edit in diagnostic.fix.edits}
        text = result.file.module.visit(_Rewriter(edits)).code
        if text == current.text:
            break
        applied += len(chosen)
        current = replace(current, text=text, raw=current.encode(text))
        result = lint_source(current, settings, schema_path)
    return FixOutcome(source, current.raw, applied, result)


def _non_conflicting(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    claimed: set[int] = set()
    chosen = []
    for diagnostic in diagnostics:
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
    """A unified diff of a file's text before and after fixing."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=path,
            tofile=path,
        )
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path`'s contents with `data` in one step, keeping its permission bits: write a
    temporary file beside it, flush it to disk, then rename it over the original."""
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
