"""GitHub Actions workflow commands: annotations on the pull request's files."""

from __future__ import annotations

from gptlint.facts.kinds import Severity
from gptlint.lint.diagnostics import Diagnostic
from gptlint.lint.edits import FixEdits

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render(diagnostics: list[Diagnostic], edits: FixEdits | None = None) -> str:
    return "".join(_annotation(d) + "\n" for d in diagnostics)


def _annotation(d: Diagnostic) -> str:
    props = {
        "title": f"gptlint ({d.code})",
        "file": d.path,
        "line": d.line,
        "col": d.col,
        "endLine": d.end_line or d.line,
        "endColumn": d.end_col or d.col,
    }
    rendered = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items())
    return f"::{_LEVEL[d.severity]} {rendered}::{_escape_data(f'{d.code} {d.message}')}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
