"""Machine-readable output: a JSON array, one object per diagnostic."""

from __future__ import annotations

import json

from gptlint.diagnostics import Diagnostic


def render(diagnostics: list[Diagnostic]) -> str:
    return json.dumps([as_dict(d) for d in diagnostics], indent=2) + "\n"


def as_dict(d: Diagnostic) -> dict:
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
        else {"applicability": d.fix.safety, "message": d.fix.description},
    }
