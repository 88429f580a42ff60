"""SARIF 2.1.0 (the Static Analysis Results Interchange Format), for code-scanning services.

One run with gptlint as the tool; its driver lists every rule with its summary, explanation
and default level, and each result points at its rule by id and index.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePath
from urllib.parse import quote

from gptlint import __version__
from gptlint.diagnostics import Diagnostic
from gptlint.kinds import Severity
from gptlint.rules import ALL_RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render(diagnostics: list[Diagnostic]) -> str:
    index = {rule.code: number for number, rule in enumerate(ALL_RULES)}
    log = {
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
                "results": [_result(d, index) for d in diagnostics],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _rule(rule) -> dict:
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


def _result(d: Diagnostic, index: dict[str, int]) -> dict:
    result = {
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
    return result


def _uri(path: str) -> str:
    """A `file://` URI for an absolute path, else a relative URI reference (forward slashes,
    percent-encoded)."""
    if PurePath(path).is_absolute():
        return Path(path).as_uri()
    return quote(PurePath(path).as_posix(), safe="/")
