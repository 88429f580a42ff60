"""Fixes as text edits in `--output-format json` (Ruff's `fix.edits`), and `--statistics` as JSON.

The edits must do exactly what `--fix` does: applied to the file they give the fixed file.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlint.command.cli import main
from gptlint.lint.edits import text_edits

SCENARIO = "n_layer = 12\nn_head = 12\nn_embd = 512\n"
FIXED = "n_layer = 12\nn_head = 8\nn_embd = 512\n"


def apply(text: str, edits: list[dict]) -> str:
    """Apply JSON edits (1-based rows and columns, line endings as Python counts them)."""
    starts = [0]
    for line in re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text):
        starts.append(starts[-1] + len(line))

    def offset(where: dict) -> int:
        return starts[min(where["row"], len(starts)) - 1] + where["column"] - 1

    spans = [(offset(e["location"]), offset(e["end_location"]), e["content"]) for e in edits]
    for start, end, content in sorted(spans, reverse=True):
        text = text[:start] + content + text[end:]
    return text


def as_dicts(edits) -> list[dict]:
    return [
        {
            "content": e.content,
            "location": {"row": e.row, "column": e.column},
            "end_location": {"row": e.end_row, "column": e.end_column},
        }
        for e in edits
    ]


def run(capsys, *args: str) -> tuple[int, object]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert err == ""
    return code, json.loads(out)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("n_head = 12\n", "n_head = 8\n"),
        ("a = 1\nb = 2\n", "a = 1\nb = 2\nc = 3\n"),
        ("a = 1\nb = 2\nc = 3\n", "a = 1\nc = 3\n"),
        ("a = 1", "a = 10"),
        ("", "x = 1\n"),
        ("a = 1\r\nb = 2\r\n", "a = 1\r\nb = 3\r\n"),
        ("a = 1\rb = 2\rc = 3", "a = 1\rb = 4\rc = 3"),
        ("é = '🙂'; n = 12\n", "é = '🙂'; n = 8\n"),
    ],
)
def test_text_edits_turn_the_text_into_the_fixed_one(before, after):
    assert apply(before, as_dicts(text_edits(before, after))) == after


def test_an_edit_is_the_changed_characters_only():
    (edit,) = text_edits("x = 1\nn_head = 12  # heads\n", "x = 1\nn_head = 8  # heads\n")
    assert (edit.content, edit.row, edit.column, edit.end_row, edit.end_column) == (
        "8",
        2,
        10,
        2,
        12,
    )
    (insert,) = text_edits("a\n", "a\nb\n")
    assert (insert.content, insert.row, insert.column, insert.end_row, insert.end_column) == (
        "b\n",
        2,
        1,
        2,
        1,
    )


@settings(max_examples=200, deadline=None)
@given(st.text("ab1 \r\n=é"), st.text("ab1 \r\n=é"))
def test_text_edits_hold_for_any_pair_of_texts(before, after):
    edits = text_edits(before, after)
    assert apply(before, as_dicts(edits)) == after
    ends = [(e.row, e.column, e.end_row, e.end_column) for e in edits]
    assert all((r, c) <= (er, ec) for r, c, er, ec in ends)
    assert all((a[2], a[3]) <= (b[0], b[1]) for a, b in itertools.pairwise(ends))  # in order


def test_json_fix_edits_give_what_fix_writes(project, capsys):
    (project / "c.py").write_text(SCENARIO)
    code, found = run(capsys, "--select", "GPT101", "--output-format", "json", "c.py")
    assert code == 1
    (diagnostic,) = found
    fix = diagnostic["fix"]
    assert list(fix) == ["applicability", "message", "edits"]
    assert fix["edits"] == [
        {
            "content": "8",
            "location": {"row": 2, "column": 10},
            "end_location": {"row": 2, "column": 12},
        }
    ]
    assert apply(SCENARIO, fix["edits"]) == FIXED
    assert main(["--select", "GPT101", "--fix", "c.py"]) == 0
    assert (project / "c.py").read_text() == FIXED


def test_json_lists_the_edits_of_unsafe_fixes_and_a_fix_less_diagnostic_has_null(project, capsys):
    text = "# a ~125M parameter model\nn_layer = 12\nn_head = 8\nn_embd = 512\n"
    (project / "c.py").write_text(text)
    code, found = run(capsys, "--select", "GPT502", "--output-format", "json", "c.py")
    assert code == 1
    (diagnostic,) = found
    assert diagnostic["fix"]["applicability"] == "unsafe"
    edited = apply(text, diagnostic["fix"]["edits"])
    assert main(["--select", "GPT502", "--fix", "--unsafe-fixes", "c.py"]) == 0
    assert edited == (project / "c.py").read_text() != text
    capsys.readouterr()
    (project / "d.py").write_text("batch_size = 0\n")
    code, found = run(capsys, "--select", "GPT106", "--output-format", "json", "d.py")
    assert (code, [(d["code"], d["fix"]) for d in found]) == (1, [("GPT106", None)])


def test_json_edits_are_located_in_crlf_and_bare_cr_files(project, capsys):
    for name, newline in (("crlf.py", "\r\n"), ("cr.py", "\r")):
        raw = SCENARIO.replace("\n", newline)
        (project / name).write_bytes(raw.encode())
        _, (diagnostic,) = run(capsys, "--select", "GPT101", "--output-format", "json", name)
        assert diagnostic["location"]["row"] == 3
        assert apply(raw, diagnostic["fix"]["edits"]) == FIXED.replace("\n", newline)


def test_json_edits_after_fix_are_those_of_the_fixed_file(project, capsys):
    """With --fix, what remains is reported against the file as written."""
    text = "# a ~125M parameter model\n" + SCENARIO
    (project / "c.py").write_text(text)
    code, found = run(
        capsys, "--select", "GPT101,GPT502", "--fix", "--output-format", "json", "c.py"
    )
    assert code == 1
    (remaining,) = found
    assert remaining["code"] == "GPT502"
    written = (project / "c.py").read_text()
    assert "n_head = 8" in written
    assert "64M" in apply(written, remaining["fix"]["edits"])


def test_json_from_stdin_has_edits(project, capsys, monkeypatch):
    import io
    import sys

    stdin = io.TextIOWrapper(io.BytesIO(SCENARIO.encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, (diagnostic,) = run(capsys, "--select", "GPT101", "--output-format", "json", "-")
    assert code == 1
    assert apply(SCENARIO, diagnostic["fix"]["edits"]) == FIXED


def test_statistics_as_json(project, capsys):
    (project / "a.py").write_text(SCENARIO)
    (project / "b.py").write_text(SCENARIO)
    (project / "c.py").write_text("n_layer = 12\nn_head = 8\nn_embd = 512\nbatch_size = 0\n")
    code, rows = run(capsys, "--statistics", "--output-format", "json", "a.py", "b.py", "c.py")
    assert code == 1
    assert rows[0] == {
        "code": "GPT101",
        "name": "embd-not-divisible-by-heads",
        "count": 2,
        "fixable": True,
    }
    assert all(list(row) == ["code", "name", "count", "fixable"] for row in rows)
    assert [row["count"] for row in rows] == sorted((row["count"] for row in rows), reverse=True)
    assert sum(row["count"] for row in rows) == len(
        json.loads(_json(capsys, "--output-format", "json", "a.py", "b.py", "c.py"))
    )


def _json(capsys, *args: str) -> str:
    main(list(args))
    return capsys.readouterr().out
