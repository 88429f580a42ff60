"""engine/evalstep.py: an eval-only config's evaluation, simulated (and measured where a GPU is),
and its failure text."""

from __future__ import annotations

import dataclasses

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.runmodel.trainingrun import ModelShape, ModelSource, StepSpec, TrainingRun

torch = pytest.importorskip("torch")

from pytest_gptcfg import report  # noqa: E402
from pytest_gptcfg.engine.check import check_memory  # noqa: E402
from pytest_gptcfg.engine.evalstep import (  # noqa: E402
    check_eval,
    find_max_eval_batch_size,
    simulate_eval,
)

RTX4070 = get_profile("rtx4070")
SHAPE = ModelShape(2, 4, 128, 128, 1000, False, 0.1)
TRAIN = StepSpec(SHAPE, 4, 128, 8, "bfloat16", False)
EVAL = dataclasses.replace(TRAIN, eval_only=True)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_the_evaluation_holds_parameters_and_forward_tensors_only():
    result = simulate_eval(EVAL, RTX4070, RTX4070.usable_bytes)
    training = check_memory(TRAIN, RTX4070, RTX4070.usable_bytes, mode="simulate")
    assert result.fits
    assert result.breakdown["gradients"] == result.breakdown["optimizer_state"] == 0
    assert result.breakdown["parameters"] == training.breakdown["parameters"]
    assert result.peak_allocated_bytes < training.peak_allocated_bytes
    assert any("eval_only" in note for note in result.notes)


def test_the_largest_evaluation_batch_is_searched_on_the_evaluation():
    budget = 700 * 2**20
    best = find_max_eval_batch_size(EVAL, RTX4070, budget, limit=256)
    assert 1 <= best < 256
    assert simulate_eval(dataclasses.replace(EVAL, batch_size=best), RTX4070, budget).fits
    assert not simulate_eval(dataclasses.replace(EVAL, batch_size=best + 1), RTX4070, budget).fits


def test_the_failure_text_of_an_evaluation_suggests_a_batch_without_accumulation():
    run = TrainingRun(EVAL, ModelSource(SHAPE, "scratch", "meta.pkl"), 8, 1)
    result = simulate_eval(dataclasses.replace(EVAL, batch_size=64), RTX4070, 600 * 2**20)
    text = report.failure_text("config/eval.py", RTX4070, run, result, 3)
    assert "  evaluation (eval_only: no_grad forwards, no training step): batch_size 4" in text
    assert "the largest batch_size whose evaluation fits is 3 (simulated); try it with " in text
    assert "--gpt-set batch_size=3" in text and "gradient_accumulation_steps" not in text


@needs_cuda
def test_the_evaluation_measured_on_cuda_peaks_below_the_training_step():
    profile = get_profile("h100-80gb")
    result = check_eval(EVAL, profile, profile.usable_bytes, mode="cuda")
    training = check_memory(TRAIN, profile, profile.usable_bytes, mode="cuda")
    assert result.fits and not result.oom
    assert 0 < result.peak_allocated_bytes < training.peak_allocated_bytes


@pytest.mark.parametrize("budget_mib", [600, pytest.param(1024, marks=pytest.mark.slow)])
def test_the_eval_batch_search_gives_the_bisections_answer(budget_mib):
    from gptlint.runmodel.estimate import largest_fitting
    from pytest_gptcfg.engine.evalstep import find_max_eval_batch_size, simulate_eval

    profile, budget = get_profile("rtx4070"), budget_mib * 2**20
    spec = StepSpec(ModelShape(2, 2, 64, 128, 5000, False), 8, 128, 1, "bfloat16", False)
    spec = dataclasses.replace(spec, eval_only=True)
    bisected = largest_fitting(
        lambda b: simulate_eval(dataclasses.replace(spec, batch_size=b), profile, budget).fits
    )
    assert find_max_eval_batch_size(spec, profile, budget) == bisected
