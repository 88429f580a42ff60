"""Machine-readable output: a JSON array, one object per diagnostic (Ruff's keys), each fix
with its text edits."""

from __future__ import annotations

import json
from collections import Counter

from gptlint.lint.diagnostics import Diagnostic
from gptlint.lint.edits import FixEdits, TextEdit
from gptlint.lint.rules import RULES_BY_CODE


def render(diagnostics: list[Diagnostic], edits: FixEdits | None = None) -> str:
    """`edits`: each fix's text edits (`edits.fix_edits`); a fix not in it has none listed."""
    return json.dumps([as_dict(d, (edits or {}).get(d, ())) for d in diagnostics], indent=2) + "\n"


def as_dict(d: Diagnostic, edits: tuple[TextEdit, ...] = ()) -> dict:
    """A diagnostic as plain data (the JSON schema of `--output-format json`)."""
    return {
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "filename": d.path,
        "location": {"row": d.line, "column": d.col},
        "end_location": {"row": d.end_line or d.line, "column": d.end_col or d.col},
        "fix": None
        if d.fix is None
        else {
            "applicability": d.fix.safety,
            "message": d.fix.description,
            "edits": [edit_dict(e) for e in edits],
        },
    }


def edit_dict(edit: TextEdit) -> dict:
    """One text edit as Ruff writes it: `content` replaces `location` up to `end_location`."""
    return {
        "content": edit.content,
        "location": {"row": edit.row, "column": edit.column},
        "end_location": {"row": edit.end_row, "column": edit.end_column},
    }


def statistics(diagnostics: list[Diagnostic]) -> str:
    """`--statistics` as JSON (Ruff's keys): counts per code, most frequent first."""
    return json.dumps(statistics_rows(diagnostics), indent=2) + "\n"


def statistics_rows(diagnostics: list[Diagnostic]) -> list[dict]:
    """Each code's count, name and whether any of its findings has a fix, most frequent
    first: `--statistics` in JSON, and in SARIF as the run's properties."""
    counts = Counter(d.code for d in diagnostics)
    fixable = {d.code for d in diagnostics if d.fix is not None}
    return [
        {"code": code, "name": RULES_BY_CODE[code].name, "count": count, "fixable": code in fixable}
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
