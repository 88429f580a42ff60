"""Output formats: each module renders a list of diagnostics as text for one audience."""

from __future__ import annotations

from collections.abc import Callable

from gptlint.diagnostics import Diagnostic
from gptlint.output import github, json_format, sarif, text

Renderer = Callable[[list[Diagnostic]], str]

FORMATS: dict[str, Renderer] = {
    "text": text.render,
    "json": json_format.render,
    "github": github.render,
    "sarif": sarif.render,
}
