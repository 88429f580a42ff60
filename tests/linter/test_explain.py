"""`gptlint --explain CODE` prints a rule's documentation in fixed sections (what it checks,
why, an example as gptlint reports and fixes it, fix safety), parsed from the rule's docstring;
`--list-rules` prints one line per rule."""

from __future__ import annotations

import textwrap

import pytest

from gptlint.command.cli import main
from gptlint.facts.kinds import FixSafety
from gptlint.lint.rules import ALL_RULES
from gptlint.lint.rules.base import RuleDoc, ScriptRule

GPT202 = """\
GPT202 (duplicate-key): key assigned twice at top level

Severity: warning.

What it checks:
A key assigned twice at the top level. Assignments that build on the previous value
(`max_iters = max_iters * 2`, `+=`) and assignments inside `if` blocks are not reported.

Why:
nanoGPT runs the file top to bottom, so the first value is dead, which is usually an
edit gone wrong (two `batch_size` lines after a copy-paste).

Example:

    batch_size = 12
    block_size = 1024
    batch_size = 16

gptlint reports:

    3:1: GPT202 batch_size is assigned on line 1 and again on line 3: the first value (12) \
is never used; the run uses 16

Fix safety:
No fix: which line is meant is not known.
"""


def explain(capsys, code: str) -> str:
    assert main(["--explain", code]) == 0
    return capsys.readouterr().out


def test_explain_prints_the_sections_and_an_example(capsys):
    assert explain(capsys, "gpt202") == GPT202


@pytest.mark.parametrize(
    "rule", [r for r in ALL_RULES if not issubclass(r, ScriptRule)], ids=lambda r: r.code
)
def test_every_rule_explains_itself_in_its_sections(capsys, rule):
    out = explain(capsys, rule.code)
    doc, example = rule.doc(), rule.INVALID[0]
    headings = ["What it checks:\n", "Why:\n", "\nExample", "Fix safety:\n"]
    assert [out.index(h) for h in headings] == sorted(out.index(h) for h in headings)
    for text in (doc.what, doc.why, doc.fix_safety, textwrap.indent(example.code, "    ")):
        assert text in out
    assert f"\n    {example.line}:{example.col}: {rule.code} " in out
    if example.expected_fix is not None:
        assert textwrap.indent(example.expected_fix, "    ") in out


@pytest.mark.parametrize(
    ("safety", "lead"),
    [
        (FixSafety.SAFE, "Safe: `gptlint --fix` applies it.\n"),
        (FixSafety.UNSAFE, "Unsafe: only `gptlint --fix --unsafe-fixes` applies it.\n"),
    ],
)
def test_the_fix_safety_section_leads_with_the_declared_safety(safety, lead):
    rules = [rule for rule in ALL_RULES if rule.fix_safety == safety]
    assert rules
    assert all(rule.doc().fix_safety.startswith(lead) for rule in rules)


DOCSTRING = """What it checks.

    Why:
        Because.

    Fix safety:
        No fix: none is known.
    """


def test_a_docstring_in_its_sections_is_parsed():
    assert RuleDoc.parse(DOCSTRING, None) == RuleDoc(
        "What it checks.", "Because.", "No fix: none is known."
    )


@pytest.mark.parametrize(
    ("docstring", "safety", "error"),
    [
        (DOCSTRING.replace("    Why:\n", ""), None, "sections"),
        (DOCSTRING.replace("        Because.", "    Because."), None, "not indented"),
        (DOCSTRING.replace("        Because.", ""), None, "empty"),
        (DOCSTRING, FixSafety.SAFE, "does not fit fix_safety = safe"),
        (DOCSTRING.replace("No fix: none is known.", "Sets it."), None, "does not fit"),
    ],
)
def test_a_docstring_out_of_its_sections_is_refused(docstring, safety, error):
    with pytest.raises(ValueError, match=error):
        RuleDoc.parse(docstring, safety)


def test_list_rules_prints_one_line_per_rule(capsys):
    assert main(["--list-rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [rule.code for rule in ALL_RULES]
    assert lines[1] == (
        "GPT101  error    fix: safe    embd-not-divisible-by-heads: n_embd is not divisible by"
        " n_head (nanoGPT asserts n_embd % n_head == 0)"
    )
