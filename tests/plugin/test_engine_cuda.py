"""CUDA mode: measured peaks, the cap, out-of-memory reporting, cleanup, agreement with simulation.

The measuring tests are skipped without a CUDA GPU.
"""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from gptlint.facts.gpus import get_profile  # noqa: E402
from gptlint.runmodel.trainingrun import ModelShape, StepSpec  # noqa: E402
from pytest_gptcfg.engine.allocator import round_size  # noqa: E402
from pytest_gptcfg.engine.check import check_memory  # noqa: E402
from pytest_gptcfg.engine.cuda import _is_oom, inventory  # noqa: E402
from pytest_gptcfg.engine.nanogpt import GPT  # noqa: E402

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
    parameters, state, largest = inventory(model, [optimizer])
    assert parameters == sum(round_size(4 * p.numel()) for p in model.parameters())
    assert state == 0, "no state before the first step"
    model(torch.zeros(1, 16, dtype=torch.long), torch.zeros(1, 16, dtype=torch.long))[1].backward()
    optimizer.step()
    parameters, state, largest = inventory(model, [optimizer])
    assert state >= 2 * parameters
    assert largest[0] == ("parameter transformer.wte.weight", 4 * 1000 * 64)
    assert ("exp_avg of transformer.wte.weight", 4 * 1000 * 64) in largest


class StandInCuda:
    """Just enough of `torch.cuda` to run CUDA mode's bookkeeping on the CPU."""

    OutOfMemoryError = torch.cuda.OutOfMemoryError

    def __init__(self):
        self.fractions = []
        self.total = 12 * GiB

    def is_available(self):
        return True

    def is_initialized(self):
        return False

    def set_device(self, device):
        pass

    def synchronize(self, device=None):
        pass

    def empty_cache(self):
        pass

    def mem_get_info(self, device):
        return self.total - 700 * MiB, self.total

    def memory_reserved(self, device):
        return 0

    def memory_allocated(self, device):
        return 0

    def max_memory_allocated(self, device):
        return 3 * GiB

    def max_memory_reserved(self, device):
        return 4 * GiB

    def reset_peak_memory_stats(self, device):
        pass

    def set_per_process_memory_fraction(self, fraction, device):
        self.fractions.append(fraction)

    def get_device_name(self, device):
        return "Stand-in GPU"

    def get_device_capability(self, device):
        return (8, 9)

    def get_device_properties(self, device):
        return type("Props", (), {"total_memory": self.total})()

    def is_bf16_supported(self):
        return True


class StandInTorch:
    """torch, with CUDA devices, autocast and GradScaler mapped to the CPU."""

    def __init__(self, cuda):
        self.cuda = cuda
        self.amp = type("Amp", (), {"GradScaler": staticmethod(self._scaler)})

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def device(*args):
        return torch.device("cpu")

    @staticmethod
    def autocast(device_type, dtype):
        return torch.autocast("cpu", dtype=dtype)

    @staticmethod
    def _scaler(device, enabled):
        return torch.amp.GradScaler("cpu", enabled=enabled)


class OutOfMemoryModel(torch.nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(4, 4))

    def forward(self, idx, targets):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.fixture
def stand_in(monkeypatch):
    import pytest_gptcfg.engine.cuda as cuda_mode

    cuda = StandInCuda()
    monkeypatch.setattr(cuda_mode, "torch", StandInTorch(cuda))
    monkeypatch.setattr(cuda_mode.torchapi, "clear_cublas_workspaces", lambda: None)
    monkeypatch.setattr(cuda_mode, "_baseline_used", {})
    monkeypatch.setattr(cuda_mode, "_nvidia_smi_used", lambda index: 200 * MiB)
    return cuda_mode, cuda


TINY = StepSpec(ModelShape(1, 2, 32, 16, 50, False, 0.0), 2, 16, 2, "bfloat16", False)


@pytest.mark.slow
def test_cuda_bookkeeping_caps_at_budget_minus_context_and_lifts_the_cap(stand_in):
    cuda_mode, cuda = stand_in
    result = cuda_mode.measure(TINY, get_profile("rtx4070"), 8 * GiB)
    assert result.mode == "measured" and not result.oom
    assert result.context_bytes == 500 * MiB, "used outside the allocator minus the baseline"
    assert cuda.fractions == [(8 * GiB - 500 * MiB) / cuda.total, 1.0]
    assert (result.peak_allocated_bytes, result.peak_reserved_bytes) == (3 * GiB, 4 * GiB)
    assert result.fits
    assert sum(result.breakdown.values()) == result.peak_reserved_bytes + result.context_bytes
    assert result.largest_tensors[0] == ("parameter transformer.h.0.mlp.c_fc.weight", 4 * 32 * 128)
    assert any("Stand-in GPU" in note for note in result.notes)
    assert "CUDA context measured: 500 MiB (the rtx4070 profile models 500 MiB, default" in str(
        result.notes
    )


def test_cuda_bookkeeping_reports_out_of_memory_instead_of_raising(stand_in):
    cuda_mode, cuda = stand_in
    spec = dataclasses.replace(TINY, model_factory=OutOfMemoryModel)
    result = cuda_mode.measure(spec, get_profile("rtx4070"), 8 * GiB)
    assert result.oom and not result.fits
    assert cuda.fractions[-1] == 1.0
    assert any("out of memory" in note for note in result.notes)


def test_cuda_bookkeeping_lets_other_errors_through(stand_in):
    cuda_mode, cuda = stand_in
    spec = dataclasses.replace(TINY, block_size=32)
    with pytest.raises(ValueError, match="block_size"):
        cuda_mode.measure(spec, get_profile("rtx4070"), 8 * GiB)
    assert cuda.fractions[-1] == 1.0


def test_the_evaluation_is_measured_with_the_same_bookkeeping(stand_in):
    from pytest_gptcfg.engine.evalstep import measure_eval

    _, cuda = stand_in
    spec = dataclasses.replace(TINY, eval_only=True)
    result = measure_eval(spec, get_profile("rtx4070"), 8 * GiB)
    assert result.mode == "measured" and not result.oom and result.fits
    assert cuda.fractions == [(8 * GiB - 500 * MiB) / cuda.total, 1.0]
    assert (result.peak_allocated_bytes, result.peak_reserved_bytes) == (3 * GiB, 4 * GiB)
    assert result.breakdown["optimizer_state"] == 0 and result.breakdown["gradients"] == 0
    assert sum(result.breakdown.values()) == result.peak_reserved_bytes + result.context_bytes
    assert result.notes[0].startswith("eval_only: train.py evaluates")
