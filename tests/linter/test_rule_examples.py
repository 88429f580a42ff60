"""Every rule's VALID and INVALID examples become tests (Fixit-style): a VALID config gets no
diagnostic from its rule; an INVALID one gets one at the expected line and column with the
expected message, and `--fix` turns it into exactly the expected file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_source
from gptlint.lint.rules import ALL_RULES
from gptlint.lint.rules.base import ScriptRule
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source


def _cases(kind: str):
    for rule in ALL_RULES:
        for number, example in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, example, id=f"{rule.code}-{kind.lower()}-{number}")


def _settings(rule, example) -> Settings:
    return Settings(select=(rule.code,), **example.settings)


def _lint(tmp_path: Path, rule, example):
    path = tmp_path / "config" / "example.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(example.code)
    source = decode_source(str(path), path.read_bytes())
    return source, lint_source(source, _settings(rule, example))


@pytest.mark.parametrize(("rule", "example"), list(_cases("VALID")))
def test_valid_example_is_not_reported(tmp_path, rule, example):
    _, result = _lint(tmp_path, rule, example)
    assert [d for d in result.diagnostics if d.code == rule.code] == []


@pytest.mark.parametrize(("rule", "example"), list(_cases("INVALID")))
def test_invalid_example_is_reported_and_fixed(tmp_path, rule, example):
    source, result = _lint(tmp_path, rule, example)
    found = [d for d in result.diagnostics if d.code == rule.code]
    assert found, f"{rule.code} did not report:\n{example.code}"
    assert example.message in found[0].message
    assert (found[0].line, found[0].col) == (example.line, example.col)
    assert found[0].severity == rule.severity
    outcome = fix_source(source, _settings(rule, example), unsafe=example.unsafe_fixes)
    fixed = outcome.fixed.decode()
    if example.expected_fix is None:
        assert fixed == example.code
    else:
        assert fixed == example.expected_fix
        assert not [d for d in outcome.remaining.diagnostics if d.code == rule.code]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_is_documented(rule):
    assert rule.code and rule.name and rule.summary
    assert rule.severity in ("error", "warning", "info")
    assert len(rule.explanation()) > len(rule.summary)
    if issubclass(rule, ScriptRule):  # run-script examples: tests/linter/test_nanochat_cli_rules.py
        assert rule.EXAMPLES, f"{rule.code} has no example"
        return
    assert rule.INVALID, f"{rule.code} has no INVALID example"
    if rule.fix_safety is not None:
        assert any(example.expected_fix is not None for example in rule.INVALID)
