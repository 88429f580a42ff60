"""docs/rules.md is generated from the rule classes and must not go stale."""

from __future__ import annotations

from pathlib import Path

from gptlint.command.docs import main, module_link, render
from gptlint.lint.rules import ALL_RULES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_committed_docs_match_the_rule_classes():
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/rules.md is stale: run `python -m gptlint.command.docs`"
    )


def test_every_code_has_a_section_with_its_documentation():
    text = render()
    for rule in ALL_RULES:
        doc = rule.doc()
        section = text[text.index(f"\n## {rule.code}\n") :]
        for title, body in (("What it checks", doc.what), ("Why", doc.why)):
            assert f"\n**{title}**\n\n{body}\n" in section
        assert f"\n**Fix safety**\n\n{doc.fix_safety}\n" in section


def test_the_table_links_each_code_to_the_module_that_holds_it():
    rows = {line.split(" | ")[0]: line for line in render().splitlines() if line.startswith("| [")}
    for rule in ALL_RULES:
        link = module_link(rule)
        assert rows[f"| [{rule.code}](#{rule.code.lower()})"].endswith(f" | {link} |")
        target = link.partition("](../")[2].rstrip(")")
        assert (DOCS.parents[1] / target).is_file()
        assert target.endswith("/" + rule.__module__.replace(".", "/") + ".py")


def test_docs_show_real_diagnostics_and_the_estimate_derivation():
    text = render()
    assert "GPT101 n_embd=512 is not divisible by n_head=12" in text
    assert "## How GPT501 estimates memory" in text
    assert "12 B per element" in text


def test_main_writes_the_file(tmp_path, capsys):
    target = tmp_path / "out" / "rules.md"
    assert main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render()
    assert "wrote" in capsys.readouterr().out
