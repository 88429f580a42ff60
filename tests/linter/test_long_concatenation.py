"""Implicit string concatenations longer than libcst's parser reads (3,000 parts): gptlint reads
them in pieces (a `+` in place of a space or tab every 2,000 parts, in a text of the same
length) and writes them back exactly as they were. Findings keep their lines and columns,
`--fix` changes only the bytes its fixes target, and where no space or tab separates the parts
often enough (or a `+` would bind differently) the file is one clear GPT000."""

from __future__ import annotations

import pytest

from gptlint.command.cli import main
from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_source
from gptlint.nanogpt.configfile import parse_config
from gptlint.nanogpt.resolve import load_config
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source
from gptlint.text.deep import run_deep
from gptlint.text.joins import ImplicitJoin

SELECT = ("--select", "GPT000,GPT101,GPT201,GPT203")
SHAPE = "n_layer = 12\nn_head = 12\nn_embd = 512\n"


def concatenation(parts: int, part: str = "'a'", separator: str = " ") -> str:
    return separator.join([part] * parts)


def gptlint(capsys, *args: str) -> tuple[int, list[str]]:
    code = main([*SELECT, *args])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out.splitlines()


def located(lines: list[str]) -> list[str]:
    """`path:line:col: CODE` of each finding."""
    return [" ".join(line.split(" ", 2)[:2]) for line in lines if ": GPT" in line]


@pytest.mark.parametrize("parts", [5_000, pytest.param(20_000, marks=pytest.mark.slow)])
def test_findings_keep_their_lines_and_columns(project, capsys, parts):
    long = concatenation(parts)
    (project / "c.py").write_text(
        f"n_layer = 12\nn_embd = 500\nlearning_rate = {long}\ndatset = {long}; n_head = 12\n"
    )
    code, out = gptlint(capsys, "c.py")
    column = len(f"datset = {long}; ") + 1
    assert code == 1
    assert located(out) == [
        "c.py:3:1: GPT203",  # the key whose value is the concatenation
        "c.py:4:1: GPT201",
        f"c.py:4:{column}: GPT101",  # after the concatenation, on its line
    ]
    assert f"learning_rate = '{'a' * parts}' is a str" in out[0]
    assert "  fix: set n_embd = 480 (gptlint --fix)" in out


@pytest.mark.slow
@pytest.mark.parametrize("parts", [5_000, 20_000])
def test_fix_changes_only_the_targeted_bytes(project, capsys, parts):
    long = concatenation(parts)
    lines = concatenation(3_500, separator="\n    ")  # one part a line
    before = f"datset = {long}  # data\n{SHAPE}x = (\n    {lines}\n)\n"
    (project / "c.py").write_bytes(before.encode())
    code, out = gptlint(capsys, "--fix", "--unsafe-fixes", "c.py")
    after = (project / "c.py").read_bytes()
    expected = before.replace("datset", "dataset").replace("n_head = 12", "n_head = 8")
    assert after == expected.encode()
    assert after.count(b"+") == 0
    assert (code, out) == (0, ["Fixed 2 problems. All checks passed!"])
    gptlint(capsys, "--fix", "--unsafe-fixes", "c.py")  # fixing twice changes nothing
    assert (project / "c.py").read_bytes() == after


@pytest.mark.parametrize(
    "separator",
    [
        " ",
        "\t",
        "  ",
        "\n    ",  # one part a line, indented
        "  # a comment\n  ",
        " \\\n",  # a line continuation
    ],
    ids=["space", "tab", "two-spaces", "lines", "comments", "continuations"],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_the_tree_writes_back_every_byte_and_reads_the_same_string(separator, newline):
    long = concatenation(3_500, "'ab'", separator)
    text = f"# config\nif True:\n    out_dir = ({long})\nx = 1  # é\n".replace("\n", newline)
    source = decode_source("c.py", text.encode())

    def parse():
        file = parse_config(source)
        return file.module.code, load_config_value(file)

    code, value = run_deep(parse)
    assert code == text
    assert value == "ab" * 3_500


def load_config_value(file) -> object:
    from gptlint.nanogpt.evaluate import evaluate

    assignment = file.assignments_of("out_dir")[0]
    return evaluate(assignment.value, {})


def test_the_pieces_are_implicit_joins_not_additions(project):
    (project / "c.py").write_text(f"out_dir = {concatenation(5_000)}\n")

    def parse():
        return parse_config(decode_source("c.py", (project / "c.py").read_bytes()))

    file = run_deep(parse)
    value = file.assignments[0].value
    assert isinstance(value.operator, ImplicitJoin)
    assert value.operator.character == " "
    assert run_deep(load_config, "c.py").get("out_dir") == "a" * 5_000


@pytest.mark.slow
def test_each_concatenation_of_a_line_of_statements_is_read(project, capsys):
    long = concatenation(4_000, '"x"')
    (project / "c.py").write_text(
        f"a = {long}; b = [{long}, 'p' + 'q', {long}]; c = 'r' + 's'\n{SHAPE}"
    )
    code, _ = gptlint(capsys, "--fix", "c.py")
    assert (project / "c.py").read_text() == (
        f"a = {long}; b = [{long}, 'p' + 'q', {long}]; c = 'r' + 's'\n"
        + SHAPE.replace("n_head = 12", "n_head = 8")
    )
    assert code == 0


@pytest.mark.slow
def test_fix_source_never_writes_a_plus_the_file_did_not_have():
    long = concatenation(6_000, "f'{x}'")
    text = f"x = 1\ndatset = {long} + 'tail'\n{SHAPE}"
    source = decode_source("c.py", text.encode())
    settings = Settings(select=("ALL",))

    def fix():
        return fix_source(source, settings, unsafe=True)

    outcome = run_deep(fix)
    assert outcome.fixed.decode() == text.replace("datset", "dataset").replace(
        "n_head = 12", "n_head = 8"
    )
    assert outcome.fixed.count(b"+") == 1


@pytest.mark.parametrize(
    "value",
    [
        concatenation(5_000, separator=""),  # nowhere to put a `+`
        "(" + "\n".join(["'a'#"] * 5_000) + "\n)",  # only comments and line ends between parts
        concatenation(5_000, "'{}'") + ".format(1)",  # `+` would bind before `.format`
        concatenation(5_000, "'%s'") + " % (1,)",
        "'p' + " + concatenation(5_000),
    ],
    ids=["no-space", "comments", "method", "percent", "added-to"],
)
def test_concatenations_that_cannot_be_read_in_pieces_are_one_clear_error(project, capsys, value):
    (project / "c.py").write_text(f"n_layer = 12\nx = {value}\n")
    code, out = gptlint(capsys, "c.py")
    assert code == 2
    assert out[0].startswith(
        "c.py:2:1: GPT000 implicit string concatenation of 5,000 parts: valid Python, but more"
        " than gptlint's parser (libcst) can read (3,000), and no space or tab between its parts"
        " at least every 2,000 parts lets gptlint read it in pieces"
    )


def test_lint_source_gives_the_same_findings_as_the_cli_for_a_long_concatenation():
    text = f"learning_rate = {concatenation(5_000)}\n{SHAPE}"
    source = decode_source("c.py", text.encode())
    result = run_deep(lint_source, source, Settings(select=("GPT101", "GPT203")))
    assert [(d.code, d.line, d.col, d.end_line, d.end_col) for d in result.diagnostics] == [
        ("GPT203", 1, 1, 1, 14),
        ("GPT101", 4, 1, 4, 7),
    ]
