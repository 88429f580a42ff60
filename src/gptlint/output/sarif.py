"""SARIF 2.1.0 (the Static Analysis Results Interchange Format), for code-scanning services.

One run with gptlint as the tool; its driver lists every rule with its summary, explanation
and default level, and each result points at its rule by id and index. A result whose fix has
text edits carries it as a SARIF fix (§3.55): one artifact change, one replacement per edit
(its deleted region, and the inserted text unless the edit only deletes).
"""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from urllib.parse import quote

from gptlint import __version__
from gptlint.facts.kinds import Severity
from gptlint.lint.diagnostics import Diagnostic, Fix
from gptlint.lint.edits import FixEdits, TextEdit
from gptlint.lint.rules import ALL_RULES
from gptlint.lint.rules.base import Rule
from gptlint.output.json_format import statistics_rows

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def statistics(diagnostics: list[Diagnostic]) -> str:
    """`--statistics` in SARIF: the log of the findings, with the counts per code
    (`json_format.statistics_rows`) as its run's `properties.statistics`."""
    log = _log(diagnostics, {})
    log["runs"][0]["properties"] = {"statistics": statistics_rows(diagnostics)}
    return json.dumps(log, indent=2) + "\n"


def render(diagnostics: list[Diagnostic], edits: FixEdits | None = None) -> str:
    """`edits`: each fix's text edits (`edits.fix_edits`); a fix not in it is not listed."""
    return json.dumps(_log(diagnostics, edits or {}), indent=2) + "\n"


def _log(diagnostics: list[Diagnostic], edits: FixEdits) -> dict:
    index = {rule.code: number for number, rule in enumerate(ALL_RULES)}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "gptlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(rule) for rule in ALL_RULES],
                    }
                },
                "results": [_result(d, index, edits.get(d, ())) for d in diagnostics],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _rule(rule: type[Rule]) -> dict:
    explanation = rule.explanation()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": explanation},
        "help": {"text": explanation, "markdown": explanation},
        "defaultConfiguration": {
            "level": _LEVEL[rule.severity],
            "enabled": rule.default_enabled,
        },
        "properties": {"fix": rule.fix_safety or "none"},
    }


def _result(d: Diagnostic, index: dict[str, int], edits: tuple[TextEdit, ...]) -> dict:
    result: dict[str, object] = {
        "ruleId": d.code,
        "level": _LEVEL[d.severity],
        "message": {"text": d.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(d.path)},
                    "region": {
                        "startLine": max(d.line, 1),
                        "startColumn": max(d.col, 1),
                        "endLine": max(d.end_line or d.line, 1),
                        "endColumn": max(d.end_col or d.col, 1),
                    },
                }
            }
        ],
    }
    if d.code in index:
        result["ruleIndex"] = index[d.code]
    if d.fix is not None:
        result["properties"] = {
            "fix": {"applicability": d.fix.safety, "message": d.fix.description}
        }
        if edits:
            result["fixes"] = [_fix(d.path, d.fix, edits)]
    return result


def _fix(path: str, fix: Fix, edits: tuple[TextEdit, ...]) -> dict:
    """A SARIF fix: the file's one artifact change, with a replacement per text edit."""
    return {
        "description": {"text": fix.description},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": _uri(path)},
                "replacements": [_replacement(edit) for edit in edits],
            }
        ],
    }


def _replacement(edit: TextEdit) -> dict:
    """The region an edit replaces (end column exclusive: equal start and end is the insertion
    point of §3.30.2) and the text it inserts, absent for a pure deletion (§3.57.3)."""
    replacement: dict = {
        "deletedRegion": {
            "startLine": edit.row,
            "startColumn": edit.column,
            "endLine": edit.end_row,
            "endColumn": edit.end_column,
        }
    }
    if edit.content:
        replacement["insertedContent"] = {"text": edit.content}
    return replacement


def _uri(path: str) -> str:
    """A `file://` URI for an absolute path, else a relative URI reference (forward slashes,
    percent-encoded)."""
    # os.fsencode: a name that is not UTF-8 (surrogate-escaped) is percent-encoded byte by byte
    posix = quote(os.fsencode(PurePath(path).as_posix()), safe="/")
    return f"file://{posix}" if PurePath(path).is_absolute() else posix
