"""`gptlint --fix` and `--diff` on files: every byte the fix does not target survives, the write
is atomic and keeps the file's mode, and fixing twice changes nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

from gptlint.command.cli import main
from gptlint.lint.diagnostics import Edit
from gptlint.lint.rules import ALL_RULES
from gptlint.lint.rules.base import ProposedFix, Violation
from gptlint.lint.rules.shape import EmbdNotDivisibleByHeads

BOM = b"\xef\xbb\xbf"


def fix(path: Path, *extra: str) -> int:
    return main(["--select", "GPT101", "--fix", *extra, str(path)])


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            b"n_layer = 12\r\nn_head   =  12   # twelve 'heads'\r\nn_embd = 512\r\n",
            b"n_layer = 12\r\nn_head   =  8   # twelve 'heads'\r\nn_embd = 512\r\n",
            id="crlf-spacing-comment",
        ),
        pytest.param(
            b"n_embd = 512  # from the default 12 heads\r\nlr = 6e-4\r\n",
            b"n_embd = 512  # from the default 12 heads\r\nn_head = 8\r\nlr = 6e-4\r\n",
            id="crlf-inserted-line",
        ),
        pytest.param(
            BOM + "# réglages — 4070\nn_head = 12\nn_embd = 512\n".encode(),
            BOM + "# réglages — 4070\nn_head = 8\nn_embd = 512\n".encode(),
            id="bom",
        ),
        pytest.param(
            b"# -*- coding: latin-1 -*-\n# r\xe9glages\nn_head = 12\nn_embd = 512  # \xa3\n",
            b"# -*- coding: latin-1 -*-\n# r\xe9glages\nn_head = 8\nn_embd = 512  # \xa3\n",
            id="latin-1-declaration",
        ),
        pytest.param(
            b"n_head = 12\nn_embd = 512",
            b"n_head = 8\nn_embd = 512",
            id="no-final-newline",
        ),
        pytest.param(b"n_embd = 512", b"n_embd = 512\nn_head = 8", id="no-final-newline-insert"),
        pytest.param(
            b'dataset = "owt"\nn_head = (12)\nn_embd = 2 ** 9\n',
            b'dataset = "owt"\nn_head = (8)\nn_embd = 2 ** 9\n',  # only the number changes
            id="expression-value",
        ),
        pytest.param(
            b"cfg = GPTConfig(\n    n_layer=6,\n    n_head=6,\n    n_embd=500,  # wide\n)\n",
            b"cfg = GPTConfig(\n    n_layer=6,\n    n_head=6,\n    n_embd=480,  # wide\n)\n",
            id="gptconfig-call",
        ),
    ],
)
def test_fix_changes_only_its_target(project, capsys, before, after):
    path = project / "c.py"
    path.write_bytes(before)
    assert fix(path) == 0
    assert path.read_bytes() == after
    assert capsys.readouterr().out == "Fixed 1 problem. All checks passed!\n"
    assert fix(path) == 0  # fixing twice changes nothing
    assert path.read_bytes() == after
    assert capsys.readouterr().out == "All checks passed!\n"


SHAPE = "n_layer = 12\nn_head = 12\nn_embd = 512\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "n_layer = 12\nn_head = (\n    12  # inner comment\n)\nn_embd = 512\n",
            "n_layer = 12\nn_head = (\n    8  # inner comment\n)\nn_embd = 512\n",
        ),
        (
            "n_layer = 12\nn_head = ( 12 )  # c\nn_embd = 512\n",
            "n_layer = 12\nn_head = ( 8 )  # c\nn_embd = 512\n",
        ),
        (
            "n_layer = 12\nn_head = ((12))\nn_embd = 512\n",
            "n_layer = 12\nn_head = ((8))\nn_embd = 512\n",
        ),
        (
            "cfg = GPTConfig(n_layer=12, n_head=(12  # c\n), n_embd=512)\n",
            "cfg = GPTConfig(n_layer=12, n_head=(8  # c\n), n_embd=512)\n",
        ),
        (  # an expression with a comment of its own is left alone rather than losing it
            "n_layer = 12\nn_head = (6 *  # half\n 2)\nn_embd = 512\n",
            "n_layer = 12\nn_head = (6 *  # half\n 2)\nn_embd = 512\n",
        ),
    ],
)
def test_fix_replaces_only_the_number(project, before, after):
    (project / "c.py").write_text(before)
    fix(project / "c.py")
    assert (project / "c.py").read_text() == after


def test_fix_keeps_keep_heads_parens(project):
    (project / "c.py").write_text("n_layer = 12\nn_head = 8\nn_embd = (700)  # c\n")
    fix(project / "c.py", "--fix-strategy", "keep-heads")
    assert (project / "c.py").read_text() == "n_layer = 12\nn_head = 8\nn_embd = (704)  # c\n"


def test_fix_keeps_final_bare_cr(project):
    (project / "c.py").write_bytes(SHAPE.replace("\n", "\r").encode())
    assert fix(project / "c.py") == 0
    assert (project / "c.py").read_bytes() == SHAPE.replace("\n", "\r").replace(
        "n_head = 12", "n_head = 8"
    ).encode()


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_fix_keeps_the_file_mode_and_leaves_no_temporary_file(project, mode):
    path = project / "c.py"
    path.write_text("n_head = 12\nn_embd = 512\n")
    path.chmod(mode)
    assert fix(path) == 0
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in project.iterdir()) == ["c.py", "pyproject.toml"]


def test_fix_through_a_symbolic_link_keeps_the_link(project):
    real = project / "real.py"
    real.write_text("n_head = 12\nn_embd = 512\n")
    link = project / "c.py"
    link.symlink_to(real)
    assert fix(link) == 0
    assert link.is_symlink()
    assert real.read_text() == "n_head = 8\nn_embd = 512\n"


def test_a_failed_write_leaves_the_file_as_it_was(project, capsys, monkeypatch):
    path = project / "c.py"
    path.write_text("n_head = 12\nn_embd = 512\n")

    def refuse(*_args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    assert fix(path) == 2
    err = capsys.readouterr().err
    assert err == f"gptlint: error: {path}: cannot write the fixed file: Permission denied\n"
    assert path.read_text() == "n_head = 12\nn_embd = 512\n"
    assert sorted(p.name for p in project.iterdir()) == ["c.py", "pyproject.toml"]


def test_a_fix_that_would_break_the_file_is_not_applied(project, capsys, monkeypatch):
    def check(self, ctx):
        value = ctx.file.assignments_of("n_head")[0].value
        broken = Edit(value, lambda _old: cst.Name("lambda"))
        yield Violation(value, "a faulty rule", ProposedFix("break it", (broken,)))

    monkeypatch.setattr(EmbdNotDivisibleByHeads, "check", check)
    path = project / "c.py"
    path.write_text("n_head = 12\n")
    assert fix(path) == 1
    assert path.read_text() == "n_head = 12\n"
    assert capsys.readouterr().out.startswith(f"{path}:1:10: GPT101 a faulty rule\n")


def test_fix_goes_on_past_an_unreadable_file(project, capsys):
    (project / "a.py").write_text("n_head = (12\n")
    good = project / "b.py"
    good.write_text("n_head = 12\nn_embd = 512\n")
    assert main(["--select", "GPT000,GPT101", "--fix", "a.py", "b.py"]) == 2
    assert good.read_text() == "n_head = 8\nn_embd = 512\n"
    out = capsys.readouterr().out
    assert out.startswith("a.py:1:10: GPT000 syntax error: '(' was never closed\n")
    assert out.endswith("Fixed 1 problem. Found 1 problem.\n")


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch tool")
@pytest.mark.parametrize(
    "before",
    [
        b"n_layer = 12\nn_head = 12\nn_embd = 512\n",
        b"n_embd = 512",
        b"n_layer = 12\r\nn_head = 12\r\nn_embd = 512\r\n",
        b"n_head = 12\nn_embd = 512\n\x0c\n# after a form feed\n",
        b"# -*- coding: latin-1 -*-\n# r\xe9glages\nn_head = 12  # \xa3\nn_embd = 512\n",
        BOM + b"n_head = 12\nn_embd = 512\n",
    ],
    ids=["lf", "no-final-newline", "crlf", "form-feed", "latin-1", "bom"],
)
def test_diff_applies_with_patch_to_give_the_fixed_file(project, capsysbinary, before):
    path = project / "c.py"
    path.write_bytes(before)
    assert main(["--select", "GPT101", "--diff", "c.py"]) == 1
    diff = capsysbinary.readouterr().out
    assert diff.startswith(b"--- c.py\n+++ c.py\n@@ ")
    assert path.read_bytes() == before
    expected = project / "expected.py"
    expected.write_bytes(before)
    assert fix(expected) == 0
    subprocess.run(
        ["patch", "-p0", "--binary", "--quiet"],
        input=diff,
        cwd=project,
        check=True,
        capture_output=True,
    )
    assert path.read_bytes() == expected.read_bytes()


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch tool")
@pytest.mark.parametrize(
    ("name", "header"),
    [
        (b"my configs/a b.py", b"--- my configs/a b.py\t\n+++ my configs/a b.py\t\n@@ "),
        (b"caf\xe9.py", b"--- caf\xe9.py\n+++ caf\xe9.py\n@@ "),
        (
            b"my configs/caf\xe9 1.py",
            b"--- my configs/caf\xe9 1.py\t\n+++ my configs/caf\xe9 1.py\t\n@@ ",
        ),
        (
            b'tab\tand "quote".py',
            b'--- "tab\\011and \\"quote\\".py"\n+++ "tab\\011and \\"quote\\".py"\n@@ ',
        ),
    ],
    ids=["space", "latin-1-name", "both", "quoted"],
)
def test_diff_of_an_odd_file_name_applies_with_patch(project, name, header):
    """The headers name the file as GNU diff would, in the name's own bytes, so that
    `patch -p0` finds it (a name with a space, one that is not UTF-8, one needing quotes)."""
    before = b"n_layer = 12\nn_head = 12\nn_embd = 512\n"
    path = Path(os.fsdecode(project / os.fsdecode(name)))
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(before)
    diff = subprocess.run(
        [sys.executable, "-m", "gptlint", "--select", "GPT101", "--diff", os.fsdecode(name)],
        cwd=project,
        capture_output=True,
    )
    assert (diff.returncode, diff.stderr) == (1, b"")
    assert diff.stdout.startswith(header)
    patched = subprocess.run(
        ["patch", "-p0", "--binary"], input=diff.stdout, cwd=project, capture_output=True
    )
    assert patched.returncode == 0, patched.stdout + patched.stderr
    assert path.read_bytes() == before.replace(b"n_head = 12", b"n_head = 8")


UNSAFE_EXAMPLES = [
    pytest.param(rule, example, id=f"{rule.code}-{number}")
    for rule in ALL_RULES
    for number, example in enumerate(rule.INVALID)
    if example.unsafe_fixes and example.expected_fix is not None
]


@pytest.mark.parametrize(("rule", "example"), UNSAFE_EXAMPLES)
def test_unsafe_fixes_apply_only_with_the_flag(project, rule, example):
    path = project / "config" / "c.py"
    path.parent.mkdir()
    path.write_text(example.code)
    options = ["--select", rule.code]
    for key, value in example.settings.items():
        options += [f"--{key.replace('_', '-')}", str(value)]
    main([*options, "--fix", str(path)])
    assert path.read_text() == example.code
    main([*options, "--fix", "--unsafe-fixes", str(path)])
    assert path.read_text() == example.expected_fix


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(b"", b"n_head = 5\n", id="empty"),
        pytest.param(b"# only a comment\n", b"# only a comment\nn_head = 5\n", id="comment-only"),
    ],
)
def test_a_fork_default_is_fixed_by_adding_the_first_line_of_a_statementless_file(
    project, before, after
):
    (project / "train.py").write_text(
        "n_layer = 12\nn_head = 12\nn_embd = 1000\nexec(open('configurator.py').read())\n"
    )
    path = project / "config" / "run.py"
    path.parent.mkdir()
    path.write_bytes(before)
    assert fix(path) == 0
    assert path.read_bytes() == after
