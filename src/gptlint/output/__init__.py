"""Output formats: each module renders a list of diagnostics as text for one audience; the
machine-readable ones (WITH_EDITS) also show each fix's text edits (`lint.edits.fix_edits`)."""

from __future__ import annotations

from collections.abc import Callable

from gptlint.lint.diagnostics import Diagnostic
from gptlint.lint.edits import FixEdits
from gptlint.output import github, json_format, sarif, text

Renderer = Callable[[list[Diagnostic], FixEdits | None], str]

FORMATS: dict[str, Renderer] = {
    "text": text.render,
    "json": json_format.render,
    "github": github.render,
    "sarif": sarif.render,
}

WITH_EDITS = frozenset({"json", "sarif"})
"""The formats that list each fix's text edits."""

STATISTICS: dict[str, Callable[[list[Diagnostic]], str]] = {
    "json": json_format.statistics,
    "sarif": sarif.statistics,
}
"""`--statistics` in a format of its own; any other format gets the text table."""


def statistics(output_format: str, diagnostics: list[Diagnostic]) -> str:
    return STATISTICS.get(output_format, text.statistics)(diagnostics)


__all__ = ["FORMATS", "WITH_EDITS", "FixEdits", "Renderer", "statistics"]
