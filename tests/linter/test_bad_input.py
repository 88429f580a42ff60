"""Bad input gets a clear one-line message naming the file (and line), never a traceback, and a
broken file does not stop the others from being linted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptlint.command.cli import main
from gptlint.lint.rules.shape import EmbdNotDivisibleByHeads

BROKEN = "n_layer = 12\nn_head = (12\nn_embd = 512\n"
SCENARIO = "n_layer = 12\nn_head = 12\nn_embd = 512\n"


def gptlint(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--select", "GPT000,GPT101", *args])
    out, err = capsys.readouterr()
    return code, out, err


def gptlint_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """In a child process, so that a crash (or a segfault in a parser) fails the test only."""
    return subprocess.run(
        [sys.executable, "-m", "gptlint", "--select", "GPT000,GPT101", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (
            b"n_layer = 12\nn_head = (12\nn_embd = 512\n",
            "a.py:2:10: GPT000 syntax error: '(' was never closed",
        ),
        (b"n_layer = = 12\n", "a.py:1:11: GPT000 syntax error: invalid syntax"),
        (b"n_layer = 12\n  n_head = 8\n", "a.py:2:2: GPT000 syntax error: unexpected indent"),
        (
            b"dataset = 'owt\n",
            "a.py:1:11: GPT000 syntax error: unterminated string literal (detected at line 1)",
        ),
        (
            b"n_layer = 12\n# caf\xe9\n",
            "a.py:2:6: GPT000 cannot decode byte 0xe9 as utf-8"
            " (save the file as UTF-8 or declare its encoding)",
        ),
        (
            b"\x7fELF\x02\x01\x01\x00\x00",
            "a.py:1:1: GPT000 binary file (contains a NUL byte), not a Python config",
        ),
        (
            b"# -*- coding: klingon -*-\nn_layer = 12\n",
            "a.py:1:1: GPT000 bad coding declaration: unknown encoding: klingon",
        ),
        (
            b"x = " + b"(" * 300 + b"1" + b")" * 300 + b"\n",
            "a.py:1:205: GPT000 syntax error: too many nested parentheses",
        ),
    ],
    ids=["unclosed", "invalid", "indent", "string", "undecodable", "binary", "encoding", "parens"],
)
def test_unreadable_file_is_one_line_and_the_others_are_still_linted(
    project, capsys, content, line
):
    (project / "a.py").write_bytes(content)
    (project / "b.py").write_text(SCENARIO)
    code, out, err = gptlint(capsys, "a.py", "b.py")
    assert code == 2
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == line
    assert lines[1].startswith("b.py:3:1: GPT101 n_embd=512 is not divisible by n_head=12")
    assert lines[-1] == "Found 2 problems (1 fixable with `gptlint --fix`)."


def test_json_output_carries_the_unreadable_file(project, capsys):
    (project / "a.py").write_text(BROKEN)
    code, out, _ = gptlint(capsys, "--output-format", "json", "a.py")
    assert code == 2
    assert '"code": "GPT000"' in out and '"row": 2' in out


def test_50000_term_expression_is_a_clean_gpt000(project):
    (project / "deep.py").write_text("n_embd = " + "+".join(["1"] * 50_000) + "\n")
    (project / "b.py").write_text(SCENARIO)
    started = time.perf_counter()
    result = gptlint_process("deep.py", "b.py", cwd=project)
    assert time.perf_counter() - started < 30
    assert result.returncode == 2, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0].startswith("deep.py:1:")
    assert "GPT000 expression nested" in result.stdout.splitlines()[0]
    assert "b.py:3:1: GPT101" in result.stdout


@pytest.mark.parametrize(
    "expression",
    [
        "-" * 20_000 + "1",
        "f" + "()" * 5_000,
        "a" + ".b" * 5_000,
        "1 if a else " * 3_000 + "1",
    ],
    ids=["unary", "calls", "attributes", "conditionals"],
)
def test_other_deep_nesting_is_a_clean_gpt000(project, expression):
    (project / "deep.py").write_text(f"n_embd = {expression}\n")
    result = gptlint_process("deep.py", cwd=project)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ""
    assert "deep.py:1:" in result.stdout and "GPT000" in result.stdout


def test_nesting_below_the_limit_is_linted_and_fixed(project, capsys):
    path = project / "c.py"
    path.write_text("n_head = 12\nn_embd = " + " + ".join(["4"] * 128) + "  # 512\n")
    code, out, _ = gptlint(capsys, "c.py")
    assert code == 1 and "n_embd=512 is not divisible by n_head=12" in out
    assert gptlint(capsys, "--fix", "--fix-strategy", "keep-heads", "c.py")[0] == 0
    assert path.read_text() == "n_head = 12\nn_embd = 480  # 512\n"


def test_a_file_of_50000_lines_lints_in_reasonable_time(project):
    lines = [f"eval_iters = {n}  # line {n + 1}" for n in range(49_998)]
    (project / "big.py").write_text("\n".join([*lines, "n_head = 12", "n_embd = 512"]) + "\n")
    started = time.perf_counter()
    result = gptlint_process("big.py", cwd=project)
    elapsed = time.perf_counter() - started
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("big.py:50000:1: GPT101 n_embd=512")
    assert elapsed < 60


def test_missing_path_is_named_and_the_others_are_still_linted(project, capsys):
    (project / "b.py").write_text(SCENARIO)
    code, out, err = gptlint(capsys, "nope.py", "b.py")
    assert code == 2
    assert err == "gptlint: error: nope.py: no such file or directory\n"
    assert out.startswith("b.py:3:1: GPT101")


def test_missing_path_alone_prints_one_line(project, capsys):
    assert gptlint(capsys, "nope.py") == (
        2,
        "",
        "gptlint: error: nope.py: no such file or directory\n",
    )


def test_folder_with_no_configs(project, capsys):
    (project / "src").mkdir()
    (project / "src" / "model.py").write_text("class GPT:\n    pass\n")
    (project / "src" / "README.md").write_text("n_head = 12\n")
    assert gptlint(capsys, "src") == (2, "", "gptlint: error: src: no config files found\n")


def test_unreadable_file_in_a_folder(project, capsys):
    config = project / "config"
    config.mkdir()
    (config / "gone.py").symlink_to(project / "missing.py")
    (config / "ok.py").write_text(SCENARIO)
    code, out, err = gptlint(capsys, "config")
    assert code == 2 and err == ""
    gone = str(Path("config") / "gone.py")
    assert f"{gone}:1:1: GPT000 cannot read file: No such file or directory" in out
    assert "ok.py:3:1: GPT101" in out


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool.gptlint]\nselect = [GPT101\n", "pyproject.toml:2: invalid TOML"),
        (
            "[tool.gptlint]\nselec = ['GPT101']\n",
            "pyproject.toml:2: unknown key 'selec' in [tool.gptlint]",
        ),
        (
            "[project]\nname = 'x'\n[tool.gptlint]\ngpu = 'rtx9999'\n",
            "pyproject.toml:4: gpu: unknown GPU profile 'rtx9999'",
        ),
        (
            "[tool.gptlint]\n\nworld-size = 0\n",
            "pyproject.toml:3: world-size: must be a positive integer",
        ),
        ("[tool.gptlint]\nignore = 5\n", "pyproject.toml:2: ignore: must be a list of strings"),
        ("[tool.gptlint]\ndefaults = 'no/train.py'\n", "pyproject.toml:2: defaults: no such file"),
        ("[tool]\ngptlint = 3\n", "pyproject.toml:2: [tool.gptlint] must be a table"),
    ],
    ids=["toml", "key", "gpu", "world-size", "type", "defaults", "table"],
)
def test_broken_settings_are_one_line_naming_file_and_line(project, capsys, pyproject, message):
    (project / "pyproject.toml").write_text(pyproject)
    (project / "c.py").write_text(SCENARIO)
    code, out, err = gptlint(capsys, "c.py")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith(f"gptlint: error: {project / message.split(':')[0]}:")
    assert message.split(":", 1)[1] in err


def test_broken_command_line_setting(project, capsys):
    (project / "c.py").write_text(SCENARIO)
    code, out, err = gptlint(capsys, "--memory-budget", "lots", "c.py")
    assert (code, out) == (2, "")
    assert err.startswith("gptlint: error: --memory-budget: ") and err.count("\n") == 1


def test_a_crash_on_one_file_is_named_and_the_others_are_still_linted(project, capsys, monkeypatch):
    original = EmbdNotDivisibleByHeads.check

    def check(self, ctx):
        if ctx.file.path.endswith("boom.py"):
            raise ValueError("a bug")
        return original(self, ctx)

    monkeypatch.setattr(EmbdNotDivisibleByHeads, "check", check)
    (project / "boom.py").write_text(SCENARIO)
    (project / "ok.py").write_text(SCENARIO)
    code, out, err = gptlint(capsys, "boom.py", "ok.py")
    assert code == 2
    assert err == (
        "gptlint: error: boom.py: internal error: ValueError: a bug"
        " (please report it; GPTLINT_DEBUG=1 shows the traceback)\n"
    )
    assert out.startswith("ok.py:3:1: GPT101")


def test_a_special_file_is_named_not_read(project, capsys):
    os.mkfifo(project / "pipe.py")
    (project / "b.py").write_text(SCENARIO)
    code, out, err = gptlint(capsys, "pipe.py", "b.py")
    assert code == 2
    assert err == "gptlint: error: pipe.py: not a regular file or folder, skipped\n"
    assert out.startswith("b.py:3:1: GPT101")


def test_code_found_in_a_folder_is_not_run_through_the_rules(project, capsys, monkeypatch):
    def check(self, ctx):
        raise AssertionError(f"a rule ran on {ctx.file.path}")

    monkeypatch.setattr(EmbdNotDivisibleByHeads, "check", check)
    (project / "model.py").write_text("n_embd = 500\nclass GPT:\n    pass\n")
    (project / "sample.py").write_text("n_embd = 500\nexec(open('configurator.py').read())\n")
    assert gptlint(capsys, ".") == (2, "", "gptlint: error: .: no config files found\n")


@pytest.mark.parametrize("content", ["", "# only a comment\n", '"""A docstring."""\n', "\n\n"])
def test_a_config_that_sets_nothing_is_clean(project, capsys, content):
    (project / "c.py").write_text(content)
    assert main(["--fix", "--unsafe-fixes", "c.py"]) == 0
    assert capsys.readouterr() == ("All checks passed!\n", "")
    assert (project / "c.py").read_text() == content
