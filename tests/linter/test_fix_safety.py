"""A rule declares its fix safety once (`Rule.fix_safety`) and every fix it reports carries it:
plain `--fix` never applies an unsafe rule's fix, and a rule that declares no fix safety
reports no fix."""

from __future__ import annotations

import pytest

from gptlint.command.cli import main
from gptlint.facts.kinds import FixSafety
from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_source
from gptlint.lint.rules import ALL_RULES
from gptlint.lint.rules.base import ProposedFix, Violation
from gptlint.lint.rules.keys import DuplicateKey
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source

_PATH = "/nonexistent-gptlint-test/config/example.py"  # no train.py beside it: nanoGPT's


def _examples():
    for rule in ALL_RULES:
        for number, example in enumerate(rule.INVALID):
            yield pytest.param(rule, example, id=f"{rule.code}-invalid-{number}")


@pytest.mark.parametrize(("rule", "example"), list(_examples()))
def test_each_fix_has_its_rules_declared_safety(rule, example):
    settings = Settings(select=(rule.code,), **example.settings)
    source = decode_source(_PATH, example.code.encode())
    found = [d for d in lint_source(source, settings).diagnostics if d.code == rule.code]
    assert found
    for diagnostic in found:
        if rule.fix_safety is None:
            assert diagnostic.fix is None
        else:
            assert diagnostic.fix is None or diagnostic.fix.safety == rule.fix_safety
    if rule.fix_safety != FixSafety.SAFE:
        outcome = fix_source(source, settings, unsafe=False)
        assert (outcome.fixed.decode(), outcome.applied) == (example.code, 0)


def test_plain_fix_leaves_an_unsafe_fix_to_unsafe_fixes(project, capsys):
    path = project / "c.py"
    path.write_text("n_head = 12\nn_embd = 720\n")
    assert main(["--select", "GPT102", "--fix", "c.py"]) == 1
    assert path.read_text() == "n_head = 12\nn_embd = 720\n"
    out = capsys.readouterr().out
    assert "  fix: set n_head = 10 (gptlint --fix --unsafe-fixes)\n" in out
    assert out.endswith("Found 1 problem (1 fixable with `gptlint --fix --unsafe-fixes`).\n")


def test_a_fix_from_a_rule_without_fix_safety_is_an_error(project, capsys, monkeypatch):
    def check(self, ctx):
        first = ctx.file.assignments[0]
        yield Violation(first.target, "proposes a fix", ProposedFix("drop it", ()))

    monkeypatch.setattr(DuplicateKey, "check", check)
    path = project / "c.py"
    path.write_text("batch_size = 12\n")
    assert main(["--select", "GPT202", "--fix", "c.py"]) == 2
    assert path.read_text() == "batch_size = 12\n"
    assert (
        "c.py: internal error: TypeError: GPT202 proposes a fix but declares no fix_safety"
        in capsys.readouterr().err
    )
