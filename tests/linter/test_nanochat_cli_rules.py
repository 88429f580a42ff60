"""The run-script rules' examples (`ScriptRule.EXAMPLES`), run by the command in a nanochat-like
checkout written here: each is reported by its rule at the line and column it names, a fix
removes the finding, and `--explain` shows the example as written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptlint.command.cli import main
from gptlint.lint.rules import ALL_RULES
from gptlint.lint.rules.base import ScriptExample, ScriptRule

DATA = Path(__file__).parents[1] / "data" / "nanochat"

SCRIPT_RULES = [rule for rule in ALL_RULES if issubclass(rule, ScriptRule)]


def _cases():
    for rule in SCRIPT_RULES:
        for number, example in enumerate(rule.EXAMPLES):
            yield pytest.param(rule, example, id=f"{rule.code}-{number}")


def _options(rule: type[ScriptRule], example: ScriptExample) -> list[str]:
    options = ["--select", rule.code]
    for key, value in example.settings.items():
        options += [f"--{key.replace('_', '-')}", str(value)]
    return options


@pytest.mark.parametrize(("rule", "example"), list(_cases()))
def test_script_example_is_reported_at_its_place(tmp_path, monkeypatch, capsys, rule, example):
    shutil.copytree(DATA, tmp_path / "nanochat")
    monkeypatch.chdir(tmp_path / "nanochat")
    Path("runs/example.sh").write_text(example.script)
    assert main([*_options(rule, example), "runs/example.sh"]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"runs/example.sh:{example.line}:{example.col}: {rule.code} ")
    if rule.fix_safety is None:
        return
    assert main([*_options(rule, example), "--fix", "--unsafe-fixes", "runs/example.sh"]) == 0
    assert Path("runs/example.sh").read_text() != example.script


def test_the_family_is_the_run_script_rules():
    assert [rule.code for rule in SCRIPT_RULES] == [f"GPT60{n}" for n in range(1, 7)]
    assert all(rule.EXAMPLES for rule in SCRIPT_RULES)


@pytest.mark.parametrize("rule", SCRIPT_RULES, ids=lambda r: r.code)
def test_explain_shows_the_script_example(capsys, rule):
    assert main(["--explain", rule.code]) == 0
    out = capsys.readouterr().out
    doc, example = rule.doc(), rule.EXAMPLES[0]
    for text in (doc.what, doc.why, doc.fix_safety):
        assert text in out
    assert "\n\nExample (runs/example.sh in a nanochat checkout" in out
    assert f"reported at {example.line}:{example.col}):\n" in out
    assert "".join(f"    {line}\n" for line in example.script.splitlines()) in out
