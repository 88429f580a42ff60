"""What nanoGPT's train.py rejects is said once (`gptlint.nanogpt.rejects`): GPT106 reports a
value exactly when the derived run stops on it, and both show it alike."""

from __future__ import annotations

import pytest

from gptlint.command.cli import main
from gptlint.facts.gpus import get_profile
from gptlint.nanogpt.derive import derive_run
from gptlint.nanogpt.resolve import load_config


def gpt106(capsys) -> list[str]:
    """GPT106's lines for c.py in the working folder."""
    main(["--select", "GPT106", "c.py"])
    return [line for line in capsys.readouterr().out.splitlines() if "GPT106" in line]


def run_problems() -> list[str]:
    """The problems that stop c.py's run, as their messages."""
    derived = derive_run(load_config("c.py"), get_profile("rtx4070"))
    return [str(problem) for problem in derived.problems]


@pytest.fixture
def config(tmp_path, monkeypatch):
    """Writes c.py in a project folder that is the working folder."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> None:
        (tmp_path / "c.py").write_text(text)

    return write


@pytest.mark.parametrize(
    ("line", "rule", "run"),
    [
        (
            "learning_rate = float('nan')\n",
            "c.py:1:1: GPT106 learning_rate=nan is outside >= 0: AdamW raises"
            " ValueError('Invalid learning rate') when train.py builds the optimizer",
            "learning_rate=nan (c.py:1): AdamW raises 'Invalid learning rate'",
        ),
        (
            "beta2 = float('nan')\n",
            "c.py:1:1: GPT106 beta2=nan is outside [0, 1): AdamW raises"
            " ValueError('Invalid beta parameter at index 1') when train.py builds the optimizer",
            "beta2=nan (c.py:1): AdamW raises 'Invalid beta parameter at index 1'",
        ),
        (
            "weight_decay = -0.1\n",
            "c.py:1:1: GPT106 weight_decay=-0.1 is outside >= 0: AdamW raises"
            " ValueError('Invalid weight_decay value') when train.py builds the optimizer",
            "weight_decay=-0.1 (c.py:1): AdamW raises 'Invalid weight_decay value'",
        ),
    ],
)
def test_an_optimizer_value_adamw_rejects_is_reported_and_stops_the_run(
    config, capsys, line, rule, run
):
    config(line)
    assert gpt106(capsys) == [rule]
    assert run_problems() == [run]


@pytest.mark.parametrize("line", ["learning_rate = float('inf')\n", "weight_decay = 1e300\n"])
def test_a_value_adamw_accepts_is_neither_reported_nor_a_stop(config, capsys, line):
    config(line)  # AdamW checks `0.0 <= lr` only: an infinite rate trains (badly), it is no crash
    assert gpt106(capsys) == []
    assert run_problems() == []


def test_a_huge_size_is_shown_by_its_digit_count_in_the_finding_and_the_stop(config, capsys):
    config("n_embd = 10**40\n")
    assert gpt106(capsys) == [
        "c.py:1:1: GPT106 n_embd=a 41-digit number is implausibly large (10**15 or more): every"
        " Linear and embedding layer is n_embd wide, and nothing that size can be built or run"
    ]
    assert run_problems() == ["n_embd=a 41-digit number (c.py:1) is implausibly large"]


def test_dropout_outside_its_range_is_reported_and_stops_the_run(config, capsys):
    config("dropout = 1.0\n")
    assert gpt106(capsys) == [
        "c.py:1:1: GPT106 dropout=1.0 is outside [0, 1): nn.Dropout raises ValueError outside"
        " [0, 1], and 1 zeroes every activation"
    ]
    assert run_problems() == ["dropout=1.0 (c.py:1) must be in [0, 1)"]
