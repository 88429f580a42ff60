"""CUDA mode: measured peaks, the cap, out-of-memory reporting, cleanup, agreement with simulation.

The measuring tests are skipped without a CUDA GPU.
"""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from gptlint.gpus import get_profile  # noqa: E402
from pytest_gptcfg.allocator import round_size  # noqa: E402
from pytest_gptcfg.cuda import _is_oom, inventory  # noqa: E402
from pytest_gptcfg.memory import ModelShape, StepSpec, check_memory  # noqa: E402
from pytest_gptcfg.nanogpt import GPT  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GiB, MiB = 1024**3, 1024**2
SPEC = StepSpec(ModelShape(4, 8, 512, 512, 50304, False, 0.0), 8, 512, 8, "bfloat16", False)


def profile():
    return get_profile("rtx4070") if torch.cuda.is_bf16_supported() else get_profile("t4")


@needs_cuda
def test_a_small_config_is_measured_and_fits():
    before = torch.cuda.memory_allocated(0) if torch.cuda.is_initialized() else 0
    result = check_memory(SPEC, profile(), 12 * GiB, mode="cuda")
    assert result.mode == "measured"
    assert result.fits and not result.oom
    assert result.device_name == torch.cuda.get_device_name(0)
    assert 0 < result.peak_allocated_bytes <= result.peak_reserved_bytes
    assert 0 < result.context_bytes < 2 * GiB
    assert torch.cuda.memory_allocated(0) <= before, "the check frees what it allocated"


@needs_cuda
def test_out_of_memory_is_reported_not_raised_and_the_next_check_starts_clean():
    small = check_memory(SPEC, profile(), 12 * GiB, mode="cuda")
    budget = small.context_bytes + small.peak_reserved_bytes // 2
    result = check_memory(SPEC, profile(), budget, mode="cuda")
    assert result.oom and not result.fits
    again = check_memory(SPEC, profile(), 12 * GiB, mode="cuda")
    assert again.fits
    assert again.peak_allocated_bytes == pytest.approx(small.peak_allocated_bytes, rel=0.01)


@needs_cuda
def test_simulated_peak_allocated_is_within_10_percent_of_measured():
    measured = check_memory(SPEC, profile(), 40 * GiB, mode="cuda")
    simulated = check_memory(SPEC, profile(), 40 * GiB, mode="simulate")
    assert simulated.peak_allocated_bytes == pytest.approx(measured.peak_allocated_bytes, rel=0.10)


@needs_cuda
def test_compiled_step_runs():
    result = check_memory(dataclasses.replace(SPEC, compile=True), profile(), 12 * GiB, mode="cuda")
    assert result.mode == "measured" and result.fits


def test_an_out_of_memory_error_wrapped_by_compile_still_counts_as_out_of_memory():
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory")
    try:
        try:
            raise oom
        except torch.cuda.OutOfMemoryError as inner:
            raise RuntimeError("backend compiler failed") from inner
    except RuntimeError as wrapped:
        assert _is_oom(wrapped)
    assert not _is_oom(RuntimeError("shape mismatch"))


def test_inventory_counts_parameters_once_and_names_optimizer_state():
    model = GPT(ModelShape(1, 2, 64, 16, 1000, False, 0.0))
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    parameters, state, largest = inventory(model, optimizer)
    assert parameters == sum(round_size(4 * p.numel()) for p in model.parameters())
    assert state == 0, "no state before the first step"
    model(torch.zeros(1, 16, dtype=torch.long), torch.zeros(1, 16, dtype=torch.long))[1].backward()
    optimizer.step()
    parameters, state, largest = inventory(model, optimizer)
    assert state >= 2 * parameters
    assert largest[0] == ("parameter transformer.wte.weight", 4 * 1000 * 64)
    assert ("exp_avg of transformer.wte.weight", 4 * 1000 * 64) in largest
