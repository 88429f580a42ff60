"""Training rules: where the world size comes from, and the schedule and evaluation facts."""

from __future__ import annotations

import pytest

from gptlint.lint.linter import lint_file
from gptlint.lint.rules.training import learning_rate_at
from gptlint.settings.table import Settings


def _lint(tmp_path, text, code, **settings):
    path = tmp_path / "c.py"
    path.write_text(text)
    return lint_file(path, Settings(select=(code,), **settings))


@pytest.mark.parametrize(
    ("comment", "size"),
    [
        ("# torchrun --standalone --nproc_per_node=8 train.py config/c.py", 8),
        ("# torchrun --nproc-per-node 4 train.py", 4),
        ("# torchrun --nproc_per_node=8 --nnodes=2 --node_rank=0 train.py", 16),
    ],
)
def test_world_size_from_a_torchrun_comment(tmp_path, comment, size):
    found = _lint(tmp_path, f"{comment}\ngradient_accumulation_steps = 5\n", "GPT401")
    assert len(found) == 1
    assert f"by the world size {size}" in found[0].message
    assert found[0].line == 2


def test_world_size_from_the_docstring(tmp_path):
    text = '"""Run with\n\n  torchrun --standalone --nproc_per_node=3 train.py c.py\n"""\n'
    found = _lint(tmp_path, text, "GPT401")
    assert len(found) == 1 and "gradient_accumulation_steps=40" in found[0].message
    assert found[0].line == 1  # the default 40: reported at the comment that sets the world size


def test_setting_wins_over_the_comment(tmp_path):
    text = "# torchrun --nproc_per_node=8 train.py\ngradient_accumulation_steps = 8\n"
    assert _lint(tmp_path, text, "GPT401") == []
    found = _lint(tmp_path, text, "GPT401", world_size=3)
    assert "world size 3 (the world-size setting)" in found[0].message


def test_learning_rate_follows_get_lr():
    assert learning_rate_at(0, 6e-4, 6e-5, 2000, 600000) == pytest.approx(6e-4 / 2001)
    assert learning_rate_at(2000, 6e-4, 6e-5, 2000, 600000) == pytest.approx(6e-4)
    assert learning_rate_at(600001, 6e-4, 6e-5, 2000, 600000) == 6e-5
    assert learning_rate_at(301000, 6e-4, 6e-5, 2000, 600000) == pytest.approx(3.3e-4)


def test_schedule_is_not_checked_without_decay_or_when_only_evaluating(tmp_path):
    assert _lint(tmp_path, "max_iters = 20\ndecay_lr = False\n", "GPT402") == []
    assert _lint(tmp_path, "max_iters = 0\neval_only = True\n", "GPT402") == []
    assert _lint(tmp_path, "batch_size = 4\n", "GPT402") == []  # nanoGPT's defaults agree


def test_warmup_longer_than_the_run(tmp_path):
    found = _lint(tmp_path, "max_iters = 1000\nlr_decay_iters = 1000\n", "GPT402")
    assert len(found) == 1
    assert "warmup_iters=2000 is above max_iters=1000" in found[0].message
    assert "3.00e-04 (50% of learning_rate)" in found[0].message


def test_eval_interval_above_max_iters_is_not_reported_for_resumed_runs(tmp_path):
    text = "init_from = 'resume'\nmax_iters = 500\n"
    assert _lint(tmp_path, text, "GPT403") == []
    found = _lint(tmp_path, "max_iters = 500\neval_interval = 1000\n", "GPT403")
    assert found[0].line == 2
