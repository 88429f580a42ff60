"""`gptlint --list-rules` and `gptlint --explain CODE`: the table of rules, and one rule's
documentation in its sections (`Rule.doc`) with its first INVALID example as gptlint reports
and fixes it. docs/rules.md (`command.docs`) renders the same sections and examples."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

from gptlint.facts.exitcodes import ExitCode
from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_source
from gptlint.lint.rules import ALL_RULES, RULES_BY_CODE
from gptlint.lint.rules.base import Invalid, Rule, ScriptExample, ScriptRule
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source

EXAMPLE_PATH = "/nonexistent-gptlint-docs/config/example.py"
"""Where examples are linted: no train.py or data/ folder is beside it, so nanoGPT's defaults
apply."""


@dataclass(frozen=True)
class ExampleRun:
    """An INVALID example as gptlint treats it: its settings as pyproject.toml writes them, the
    diagnostics it prints (`line:col: CODE message`), and the command that fixes it with the
    file after that (both None where the example has no fix)."""

    settings: str
    code: str
    reported: tuple[str, ...]
    fix_command: str | None
    fixed: str | None


def run_example(rule: type[Rule], example: Invalid) -> ExampleRun:
    """Lint (and fix) `example` with only `rule` selected."""
    settings = Settings(select=(rule.code,), **example.settings)
    source = decode_source(EXAMPLE_PATH, example.code.encode())
    found = [d for d in lint_source(source, settings).diagnostics if d.code == rule.code]
    command = fixed = None
    if example.expected_fix is not None:
        fixed = fix_source(source, settings, unsafe=example.unsafe_fixes).fixed.decode()
        command = "gptlint --fix --unsafe-fixes" if example.unsafe_fixes else "gptlint --fix"
    return ExampleRun(
        ", ".join(_setting(k, v) for k, v in example.settings.items()),
        example.code,
        tuple(f"{d.line}:{d.col}: {d.code} {d.message}" for d in found),
        command,
        fixed,
    )


def _setting(name: str, value: object) -> str:
    """A setting as it is written in pyproject.toml (`memory-budget = "6GiB"`)."""
    if name in ("memory_budget", "cuda_context") and isinstance(value, int):
        value = f"{value / 2**30:g}GiB"
    return f"{name.replace('_', '-')} = {value!r}".replace("'", '"')


def rule_table() -> str:
    """`gptlint --list-rules`: one line per rule."""
    rows = []
    for rule in ALL_RULES:
        fix = rule.fix_safety or "-"
        default = "" if rule.default_enabled else " (off by default)"
        rows.append(
            f"{rule.code}  {rule.severity:<7}  fix: {fix:<6}  {rule.name}: {rule.summary}{default}"
        )
    return "".join(row + "\n" for row in rows)


def explain(code: str) -> int:
    """`gptlint --explain CODE`: print the rule's documentation; an error for an unknown code."""
    rule = RULES_BY_CODE.get(code.upper())
    if rule is None:
        print(
            f"gptlint: error: unknown rule code {code!r} (see gptlint --list-rules)",
            file=sys.stderr,
        )
        return ExitCode.ERROR
    print(explanation(rule), end="")
    return ExitCode.CLEAN


def explanation(rule: type[Rule]) -> str:
    """A rule's documentation for the terminal: what it checks, why, an example, fix safety."""
    doc = rule.doc()
    default = (
        "" if rule.default_enabled else f" Off by default: `--select {rule.code}` turns it on."
    )
    parts = [
        f"{rule.code} ({rule.name}): {rule.summary}",
        f"Severity: {rule.severity}.{default}",
        f"What it checks:\n{doc.what}",
        f"Why:\n{doc.why}",
        *_examples(rule),
        f"Fix safety:\n{doc.fix_safety}",
    ]
    return "\n\n".join(parts) + "\n"


def _examples(rule: type[Rule]) -> list[str]:
    if issubclass(rule, ScriptRule):
        return _script_example(rule.EXAMPLES[0])
    return _example(run_example(rule, rule.INVALID[0]))


def _script_example(example: ScriptExample) -> list[str]:
    """A run-script example as written (it needs a nanochat checkout to be linted)."""
    return [f"Example ({script_example_context(example)}):", _indented(example.script)]


def script_example_context(example: ScriptExample) -> str:
    """`runs/example.sh in a nanochat checkout, with --gpu a100-40gb`, reported at its
    line and column."""
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in example.settings.items())
    where = f"reported at {example.line}:{example.col}"
    return f"runs/example.sh in a nanochat checkout{', ' + flags if flags else ''}; {where}"


def _example(run: ExampleRun) -> list[str]:
    with_settings = f" (with {run.settings})" if run.settings else ""
    parts = [f"Example{with_settings}:", _indented(run.code)]
    if run.reported:
        parts += ["gptlint reports:", _indented("\n".join(run.reported))]
    if run.fixed is not None:
        parts += [f"After `{run.fix_command}`:", _indented(run.fixed)]
    return parts


def _indented(text: str) -> str:
    return textwrap.indent(text.rstrip("\n"), "    ")
