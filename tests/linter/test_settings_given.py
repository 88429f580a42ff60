"""A setting that is given wins, whatever its value, even where it equals what applies when
nothing is given: `--world-size 1` over a `--nproc_per_node=8` comment and over pyproject.toml,
pyproject.toml's `world-size` over the comment; `--exclude` patterns start at the working
folder even under a pyproject.toml that has its own settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.command.cli import main

LAUNCHED_ON_8 = (
    "# torchrun --standalone --nproc_per_node=8 train.py config/c.py\n"
    "gradient_accumulation_steps = 12\n"
)
NOT_DIVISIBLE = (
    "c.py:2:1: GPT401 gradient_accumulation_steps=12 is not divisible by the world size {size}"
    " ({origin}): under DDP train.py asserts gradient_accumulation_steps % ddp_world_size == 0"
    " before splitting it among the processes; use {fixed} (2 micro-steps per process; tokens"
    " per iteration change by {change})"
)
ON_8 = NOT_DIVISIBLE.format(
    size=8, origin="`--nproc_per_node=8` in the file's comments", fixed=16, change="1.33x"
)
ON_5 = NOT_DIVISIBLE.format(size=5, origin="the world-size setting", fixed=10, change="0.83x")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder as the working folder, with c.py launched on 8 processes."""
    (tmp_path / "c.py").write_text(LAUNCHED_ON_8)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pyproject(folder: Path, table: str) -> None:
    (folder / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.gptlint]\n{table}")


def gpt401(capsys, *args: str) -> list[str]:
    """GPT401's findings for c.py, with `args` on the command line."""
    main(["--select", "GPT401", *args, "c.py"])
    return [line for line in capsys.readouterr().out.splitlines() if "GPT401" in line]


def test_the_launch_comment_sets_the_world_size_when_nothing_else_does(project, capsys):
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert gpt401(capsys) == [ON_8]


@pytest.mark.parametrize(("size", "found"), [("1", []), ("3", []), ("5", [ON_5])])
def test_world_size_on_the_command_line_wins_over_the_launch_comment(project, capsys, size, found):
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert gpt401(capsys, "--world-size", size) == found


@pytest.mark.parametrize(("size", "found"), [("1", []), ("5", [ON_5])])
def test_world_size_in_pyproject_wins_over_the_launch_comment(project, capsys, size, found):
    pyproject(project, f"world-size = {size}\n")
    assert gpt401(capsys) == found


def test_world_size_1_on_the_command_line_wins_over_pyproject(project, capsys):
    pyproject(project, "world-size = 5\n")
    assert gpt401(capsys) == [ON_5]
    assert gpt401(capsys, "--world-size", "1") == []


def test_exclude_on_the_command_line_starts_at_the_working_folder(tmp_path, monkeypatch, capsys):
    pyproject(tmp_path, "gpu = 't4'\n")
    (tmp_path / "sub" / "old").mkdir(parents=True)
    (tmp_path / "sub" / "old" / "x.py").write_text("n_layer = 12\nn_head = 12\nn_embd = 500\n")
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["--select", "GPT101", "--exclude", "old/*", "."]) == 2
    _, err = capsys.readouterr()
    assert err == (
        "gptlint: error: .: no config files found (every .py file here matches the exclude"
        " setting: ['old/*'])\n"
    )
