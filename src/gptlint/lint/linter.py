"""Linting one config: read, parse, resolve, run the enabled rules, drop `# noqa`'d findings."""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import libcst as cst

from gptlint.facts.kinds import Severity
from gptlint.lint.context import LintContext
from gptlint.lint.diagnostics import Diagnostic
from gptlint.lint.noqa import NOQA, suppresses
from gptlint.lint.rules import RULES_BY_CODE, enabled_codes
from gptlint.nanogpt.configfile import ConfigFile, parse_config
from gptlint.nanogpt.forkmodel import module_file, run_folder
from gptlint.nanogpt.resolve import EffectiveConfig, OverrideError, resolve
from gptlint.nanogpt.schema import NANOGPT_SCHEMA, NotNanoGPTError, schema_for
from gptlint.settings.table import Settings, SettingsError
from gptlint.text.decode import Source, SourceError, decode_source, unread_reason
from gptlint.text.files import read_regular
from gptlint.text.reread import Reparser

_LOWERCASE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class LintResult:
    """The outcome for one file: its diagnostics, and the parsed file when it could be read."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    file: ConfigFile | None = None
    skipped: bool = False  # not linted: found in a folder, and code rather than a config

    @property
    def unreadable(self) -> bool:
        return self.file is None


def lint_source(
    source: Source,
    settings: Settings,
    schema_path: Path | None = None,
    configs_only: bool = False,
    reparser: Reparser | None = None,
) -> LintResult:
    """Lint decoded `source`; `schema_path` is where to look for a train.py (default: the file).
    With `configs_only`, a file that does not look like a config is parsed but not linted.
    `reparser` reads the file from the tree of an earlier text of it (a fix pass's)."""
    codes = _codes(settings.select, settings.ignore)
    try:
        file = parse_config(source, reparser)
    except SourceError as exc:
        diagnostics = []
        if "GPT000" in codes:
            diagnostics.append(_unreadable(source.path, exc))
        return LintResult(source.path, diagnostics)
    if configs_only and not looks_like_config(file, settings):
        return LintResult(source.path, [], file, skipped=True)
    schema = schema_for(
        schema_path or Path(source.path),
        settings.defaults,
        settings.profile(),
        source.text,
        settings.model,
    )
    ctx = LintContext(_with_overrides(resolve(file, schema), settings), settings)
    diagnostics = []
    for code in codes:
        rule = RULES_BY_CODE[code]()
        for violation in rule.check(ctx):
            diagnostics.append(_locate(file, rule, violation))
    diagnostics = [d for d in diagnostics if not _suppressed(source, d)]
    diagnostics.sort(key=lambda d: (d.line, d.col, d.code))
    return LintResult(source.path, diagnostics, file)


@lru_cache(maxsize=64)
def _codes(select: tuple[str, ...] | None, ignore: tuple[str, ...]) -> tuple[str, ...]:
    """The enabled rule codes, sorted: worked out once per run, not once per file."""
    return tuple(sorted(enabled_codes(select, ignore)))


def _with_overrides(config: EffectiveConfig, settings: Settings) -> EffectiveConfig:
    """The config with the `set` setting's `KEY=VALUE` items applied as nanoGPT applies its
    command-line overrides (a key it does not know, or a type change, is a settings error)."""
    if not settings.overrides:
        return config
    try:
        return config.with_overrides(settings.overrides)
    except OverrideError as exc:
        raise SettingsError(f"--set / [tool.gptlint] set: {exc}") from None


def lint_bytes(
    path: str,
    raw: bytes,
    settings: Settings,
    schema_path: Path | None = None,
    configs_only: bool = False,
) -> LintResult:
    """Lint a file's bytes (as read from disk or stdin); `configs_only` as for lint_source."""
    try:
        source = decode_source(path, raw)
    except SourceError as exc:
        codes = _codes(settings.select, settings.ignore)
        return LintResult(path, [_unreadable(path, exc)] if "GPT000" in codes else [])
    return lint_source(source, settings, schema_path, configs_only)


def lint_file(path: str | Path, settings: Settings) -> list[Diagnostic]:
    """The diagnostics for the config at `path` (GPT000 when it cannot be read)."""
    try:  # only a regular file: a FIFO or device is named, never read
        raw = read_regular(path)
    except OSError as exc:
        return [_unreadable(str(path), SourceError(unread_reason(exc)))]
    return lint_bytes(str(path), raw, settings).diagnostics


def looks_like_config(file: ConfigFile, settings: Settings) -> bool:
    """Whether a .py file found in a folder is a config rather than code. A module that defines
    functions or classes (model.py) or calls exec (train.py, sample.py, configurator.py run
    the configs that way) is not, nor one that runs code (`_runs_code`) of its project's own
    that it imports (`_imports_project_code`: a training program kept among the configs,
    `from train import train` ... `train(cfg)`); otherwise it is one if it sets a known key or
    a model shape, or, running no code (a dataset's prepare.py, a setup.py), assigns a
    lowercase name (a config of typos only)."""
    if any(b.reason in ("definition", "exec()") for b in file.bindings):
        return False
    try:
        schema = schema_for(
            Path(file.path), settings.defaults, settings.profile(), file.source.text, settings.model
        )
    except NotNanoGPTError:  # a config of such a project still looks like one; linting says why
        schema = NANOGPT_SCHEMA
    runs_code = _runs_code(file.module)
    project = None if schema is NANOGPT_SCHEMA else run_folder(Path(schema.origin))
    if runs_code and project is not None and _imports_project_code(file, project):
        return False
    if file.shape_calls or any(a.key in schema for a in file.assignments):
        return True
    if runs_code:
        return False
    return any(_LOWERCASE_NAME.match(a.key) for a in file.assignments)


def _imports_project_code(file: ConfigFile, folder: Path) -> bool:
    """Whether `file` imports, at its top level, a module that is a file of the project whose
    training script runs from `folder` (`from train import train`, `from models.gpt import
    GPT`; not `import os` or `import torch`)."""
    modules = (module for binding in file.bindings for module in binding.modules)
    return any(module_file(folder, module) is not None for module in modules)


def _runs_code(module: cst.Module) -> bool:
    """Whether a module does more than assign: a loop, a `with` or `try` block, or a call made
    for its effect (`print(...)`, `setup(...)`), at its top level or in an `if` there."""
    stack: list[cst.CSTNode] = list(module.body)
    while stack:
        statement = stack.pop()
        if isinstance(statement, cst.For | cst.While | cst.With | cst.Try | cst.TryStar):
            return True
        if isinstance(statement, cst.If | cst.Else):
            stack.extend(statement.body.body)
            if isinstance(statement, cst.If) and statement.orelse is not None:
                stack.append(statement.orelse)
        elif isinstance(statement, cst.SimpleStatementLine | cst.SimpleStatementSuite):
            stack.extend(statement.body)
        elif isinstance(statement, cst.Expr) and isinstance(statement.value, cst.Call):
            return True
    return False


def _unreadable(path: str, exc: SourceError) -> Diagnostic:
    return Diagnostic("GPT000", Severity.ERROR, path, exc.line, exc.col, exc.message)


def _locate(file: ConfigFile, rule, violation) -> Diagnostic:
    if violation.node is None:
        line, col, end_line, end_col = 1, 1, 1, 1
    else:
        where = file.position(violation.node)
        line, col = where.start.line, where.start.column + 1
        end_line, end_col = where.end.line, where.end.column + 1
    return Diagnostic(
        rule.code,
        rule.severity,
        file.path,
        line,
        col,
        violation.message,
        end_line,
        end_col,
        rule.fix_for(violation),
    )


def _suppressed(source: Source, diagnostic: Diagnostic) -> bool:
    for line in range(diagnostic.line, max(diagnostic.line, diagnostic.end_line) + 1):
        match = _noqa(source.line_text(line))
        if match is not None and suppresses(match, diagnostic.code):
            return True
    return False


def _noqa(line: str) -> re.Match | None:
    """The `# noqa` comment of a line, not one inside a string (a line that cannot be
    tokenized alone, such as one inside a multi-line string, is searched as text)."""
    match = NOQA.search(line)
    if match is None:
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        return match
    comments = (t.string for t in tokens if t.type == tokenize.COMMENT)
    return next((m for m in map(NOQA.search, comments) if m is not None), None)
