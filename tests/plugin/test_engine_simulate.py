"""The simulation engine: the CUDA step on fake tensors, its verdict and what it reports."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

from gptlint.facts.gpus import get_profile  # noqa: E402
from gptlint.runmodel.estimate import largest_fitting  # noqa: E402
from gptlint.runmodel.trainingrun import ModelShape, StepSpec, count_params  # noqa: E402
from pytest_gptcfg.engine.allocator import CachingAllocator  # noqa: E402
from pytest_gptcfg.engine.check import (  # noqa: E402
    check_memory,
    find_max_batch_size,
    largest_fitting_affine,
)
from pytest_gptcfg.engine.simulate import CudaBehaviour  # noqa: E402
from pytest_gptcfg.engine.tracker import StorageTracker  # noqa: E402
from pytest_gptcfg.engine.trainstep import (  # noqa: E402
    StepObserver,
    build_model,
    make_optimizers,
    random_batches,
    run_training,
)
from pytest_gptcfg.results import MemoryResult  # noqa: E402

GiB, MiB = 1024**3, 1024**2
RTX4070 = get_profile("rtx4070")
SMALL = StepSpec(ModelShape(2, 4, 128, 128, 1000, False, 0.0), 4, 128, 8, "bfloat16", False)


def simulate(spec=SMALL, profile=RTX4070, budget=12 * GiB):
    return check_memory(spec, profile, budget, mode="simulate")


def test_a_small_config_fits_and_the_result_says_simulated():
    result = simulate()
    assert result.mode == "simulated"
    assert result.fits and not result.oom
    assert result.device_name == "NVIDIA GeForce RTX 4070 (12 GB) (simulated)"
    assert result.attention_kernel == "flash"
    assert result.torch_version == torch.__version__
    assert 0 < result.peak_allocated_bytes <= result.peak_reserved_bytes
    assert any("simulated" in note for note in result.notes)


def test_breakdown_adds_up_to_what_is_compared_with_the_budget():
    result = simulate()
    assert set(result.breakdown) == {
        "parameters", "gradients", "optimizer_state", "weight_copies", "activations",
        "logits_and_loss", "allocator_overhead", "cuda_context",
    }  # fmt: skip
    assert sum(result.breakdown.values()) == result.peak_reserved_bytes + result.context_bytes
    assert result.breakdown["cuda_context"] == result.context_bytes


def test_largest_tensors_are_sorted_and_at_most_ten():
    result = simulate()
    sizes = [size for _, size in result.largest_tensors]
    assert 0 < len(sizes) <= 10
    assert sizes == sorted(sizes, reverse=True)


def test_peak_grows_with_batch_size():
    peaks = [
        simulate(dataclasses.replace(SMALL, batch_size=b)).peak_allocated_bytes for b in (2, 4, 8)
    ]
    assert peaks[0] < peaks[1] < peaks[2]


def test_math_attention_fallback_costs_more_than_flash():
    # same parameters: only the head count differs (head_dim 260 -> math, 130 -> flash)
    flash_spec = dataclasses.replace(
        SMALL, shape=ModelShape(2, 4, 520, 256, 1000, False, 0.0), block_size=256
    )
    math_spec = dataclasses.replace(
        flash_spec, shape=dataclasses.replace(flash_spec.shape, n_head=2)
    )
    flash, math = simulate(flash_spec), simulate(math_spec)
    assert (flash.attention_kernel, math.attention_kernel) == ("flash", "math")
    assert math.peak_allocated_bytes > flash.peak_allocated_bytes
    assert any("math kernel" in note for note in math.notes)


def test_head_dim_36_falls_back_to_math_on_a_t4():
    spec = dataclasses.replace(SMALL, shape=ModelShape(2, 4, 144, 128, 1000, False, 0.0))
    assert simulate(spec).attention_kernel == "flash"
    assert simulate(spec, get_profile("t4")).attention_kernel == "math"


class OpRecorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(getattr(func, "__name__", ""))
        return func(*args, **(kwargs or {}))


def ops_called(spec, profile=RTX4070):
    with OpRecorder() as recorder:
        result = simulate(spec, profile)
    return recorder.names, result


def test_float16_uses_the_grad_scaler_and_bfloat16_does_not():
    names, _ = ops_called(dataclasses.replace(SMALL, dtype="float16"))
    assert "_amp_foreach_non_finite_check_and_unscale_" in names
    assert "_amp_update_scale_" in names
    names, _ = ops_called(SMALL)
    assert "_amp_foreach_non_finite_check_and_unscale_" not in names


def test_the_engine_runs_the_specs_dtype_and_leaves_the_bf16_fallback_to_derive_run():
    # train.py's default bfloat16 becomes float16 on a T4 in gptlint.nanogpt.derive.derive_run
    # (tests/linter/test_run.py); an explicit bfloat16 runs as bfloat16: no GradScaler
    names, result = ops_called(SMALL, get_profile("t4"))
    assert "_amp_foreach_non_finite_check_and_unscale_" not in names
    assert not any("no bfloat16" in note for note in result.notes)
    names, _ = ops_called(dataclasses.replace(SMALL, dtype="float16"), get_profile("t4"))
    assert "_amp_foreach_non_finite_check_and_unscale_" in names


def test_live_memory_returns_to_the_same_level_after_each_optimizer_step():
    tracker = StorageTracker(CachingAllocator(), logits_numel=-1)
    levels = []

    class Levels(StepObserver):
        def phase(self, name):
            if name == "idle":
                levels.append(tracker.live_bytes)

    behaviour = CudaBehaviour(torch.bfloat16, (8, 9))
    with FakeTensorMode(), tracker, torch.device("cpu"):
        model = build_model(SMALL)
        optimizers = make_optimizers(model, SMALL, "cuda")
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        batches = random_batches(SMALL, "cpu")
        run_training(model, optimizers, scaler, batches, lambda: behaviour, SMALL, Levels())
        run_training(model, optimizers, scaler, batches, lambda: behaviour, SMALL, Levels())
    assert len(levels) == 4
    assert levels[1] == levels[2] == levels[3]
    assert levels[0] <= levels[1]


def test_a_step_over_the_cap_is_reported_as_out_of_memory():
    result = simulate(budget=520 * 1024**2)
    assert result.oom
    assert not result.fits
    assert any("out of memory" in note for note in result.notes)


@pytest.mark.slow
def test_compile_is_simulated_compiled_and_says_so():
    result = simulate(dataclasses.replace(SMALL, compile=True))
    assert result.compiled
    assert any("torch.compile simulated" in note for note in result.notes)


@pytest.mark.slow
def test_find_max_batch_size_returns_a_batch_that_fits_while_one_more_does_not():
    budget = simulate(dataclasses.replace(SMALL, batch_size=24)).peak_reserved_bytes + 500 * 2**20
    best = find_max_batch_size(SMALL, RTX4070, budget)
    assert best >= 1
    assert simulate(dataclasses.replace(SMALL, batch_size=best), budget=budget).fits
    assert not simulate(dataclasses.replace(SMALL, batch_size=best + 1), budget=budget).fits


@pytest.mark.slow
def test_the_batch_search_reuses_the_check_and_verifies_its_answer_in_few_probes():
    budget = simulate(dataclasses.replace(SMALL, batch_size=24)).peak_reserved_bytes + 500 * 2**20
    known = simulate(SMALL, budget=budget)
    probed: list[int] = []
    best = find_max_batch_size(SMALL, RTX4070, budget, known=known, probed=probed)
    assert SMALL.batch_size not in probed
    assert best + 1 in probed  # the neighbour above was checked, not predicted
    assert best == find_max_batch_size(SMALL, RTX4070, budget)
    bisected: list[int] = []

    def fits(batch: int) -> bool:
        bisected.append(batch)
        return simulate(dataclasses.replace(SMALL, batch_size=batch), budget=budget).fits

    assert largest_fitting(fits, 4096) == best
    assert len(probed) < len(bisected)


def _line_result(batch: int, peak: int, budget: int, kernel: str = "flash") -> MemoryResult:
    return MemoryResult(
        mode="simulated",
        fits=peak <= budget,
        peak_allocated_bytes=peak,
        peak_reserved_bytes=peak,
        context_bytes=0,
        budget_bytes=budget,
        breakdown={"parameters": 1000},
        largest_tensors=[],
        oom=peak > budget,
        torch_version="",
        device_name="",
        attention_kernel=kernel,
    )


@pytest.mark.parametrize("budget", [500, 1000, 1003, 1037, 5000, 50_000, 400_000])
@pytest.mark.parametrize("jitter", [0, 3, 40])
@pytest.mark.parametrize("start", [1, 12, 64])
def test_the_affine_search_gives_the_bisections_answer(budget, jitter, start):
    def peak(batch: int) -> int:  # affine, with the allocator's rounding as a jitter
        return 1000 + 37 * batch + (batch * 7919) % (jitter + 1)

    def probe(batch: int, capped: bool) -> MemoryResult:
        return _line_result(batch, peak(batch), budget if capped else 1 << 62)

    expected = largest_fitting(lambda batch: peak(batch) <= budget, 4096)
    assert largest_fitting_affine(probe, budget, start) == expected


@pytest.mark.parametrize("budget", [5000, 20_000, 50_000])
@pytest.mark.parametrize("start", [1, 12, 64])
def test_where_capped_runs_fit_beyond_the_peaks_line_the_tensors_line_finds_the_answer(
    budget, start
):
    # uncapped, the allocator keeps cached segments (reserved grows 40 a batch); capped, it
    # releases them and a run fits while its tensors do (37 a batch)
    probes: list[int] = []

    def probe(batch: int, capped: bool) -> MemoryResult:
        probes.append(batch)
        reserved, allocated = 1000 + 40 * batch + (batch * 7919) % 7, 1000 + 37 * batch
        fits = allocated <= budget or not capped
        return dataclasses.replace(
            _line_result(batch, reserved, budget if capped else 1 << 62),
            fits=fits,
            oom=not fits,
            peak_allocated_bytes=allocated,
            peak_reserved_bytes=min(reserved, budget) if capped and fits else reserved,
        )

    expected = largest_fitting(lambda batch: 1000 + 37 * batch <= budget, 4096)
    assert largest_fitting_affine(probe, budget, start) == expected
    # the peaks' line and its answer's neighbour, then the tensors' line and its neighbour
    assert len(probes) <= 6


def test_the_affine_search_bisects_when_the_kernel_changes_with_the_batch():
    budget = 20_000

    def probe(batch: int, capped: bool) -> MemoryResult:
        peak = 1000 + (37 if batch < 100 else 300) * batch
        kernel = "flash" if batch < 100 else "math"
        return _line_result(batch, peak, budget if capped else 1 << 62, kernel)

    expected = largest_fitting(lambda batch: probe(batch, True).fits, 4096)
    assert largest_fitting_affine(probe, budget, 12) == expected


def test_find_max_batch_size_is_zero_when_batch_one_does_not_fit():
    assert find_max_batch_size(SMALL, RTX4070, 100 * 2**20) == 0


def test_a_known_batch_of_one_that_does_not_fit_ends_the_search_without_a_probe():
    """gpt2-xl's fine-tuning at batch 1 on a 24 GB card: nothing more to simulate (a probe at
    2 would capture a 48-layer model's graphs again for nothing)."""
    one = dataclasses.replace(SMALL, batch_size=1)
    budget = 100 * 2**20
    known = simulate(one, budget=budget)
    probed: list[int] = []
    assert not known.fits
    assert find_max_batch_size(one, RTX4070, budget, known=known, probed=probed) == 0
    assert probed == []


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        check_memory(SMALL, RTX4070, GiB, mode="gpu")


def test_memory_interface_imports_without_torch():
    code = "import sys, pytest_gptcfg.results; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_gpt2_124m_at_batch_12_does_not_fit_12_gb_and_logits_dominate():
    shape = ModelShape(12, 12, 768, 1024, 50304, False, 0.0)
    result = simulate(StepSpec(shape, 12, 1024, 40, "bfloat16", False))
    param_bytes = 4 * count_params(12, 768, 50304, 1024, False, non_embedding=False)
    # blocks are the tensors rounded up; a 2 MiB-rounded segment's last < 1 MiB is not split off
    assert param_bytes <= result.breakdown["parameters"] < param_bytes + 2 * MiB
    state = result.breakdown["optimizer_state"]
    assert 2 * param_bytes <= state < 2 * param_bytes + 4 * MiB
    assert not result.fits
    assert max(result.breakdown, key=result.breakdown.get) == "logits_and_loss"
    assert 11 * GiB < result.peak_allocated_bytes < 14 * GiB


def test_simulation_is_deterministic():
    first, second = simulate(), simulate()
    assert first.peak_allocated_bytes == second.peak_allocated_bytes
    assert first.peak_reserved_bytes == second.peak_reserved_bytes
    assert first.breakdown == second.breakdown


def test_float32_training_keeps_fp32_logits_and_uses_mem_efficient_attention():
    bf16 = simulate()
    fp32 = simulate(dataclasses.replace(SMALL, dtype="float32"))
    assert fp32.attention_kernel == "efficient"
    assert fp32.breakdown["logits_and_loss"] > bf16.breakdown["logits_and_loss"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_loop_that_drops_the_logits_peaks_one_logits_tensor_lower(dtype):
    # train.py's `logits, loss = model(X, Y)` (nanoGPT) against `loss = model(X, Y)[1]`
    spec = dataclasses.replace(
        SMALL, shape=dataclasses.replace(SMALL.shape, vocab_size=8192), dtype=dtype
    )
    kept = simulate(spec)
    dropped = simulate(dataclasses.replace(spec, keeps_logits=False))
    width = 4 if dtype == "float32" else 2
    logits = spec.batch_size * spec.block_size * 8192 * width
    assert kept.peak_allocated_bytes - dropped.peak_allocated_bytes == logits


SCORES_WITHOUT_SOFTMAX = """
import torch
from torch import nn
from torch.nn import functional as F


class GPTConfig:
    def __init__(self, n_layer=1, n_head=2, n_embd=64, block_size=64, vocab_size=512,
                 bias=False, dropout=0.0):
        self.n_head, self.n_embd, self.vocab_size = n_head, n_embd, vocab_size


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        x = self.wte(idx)
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in self.qkv(x).split(C, 2))
        att = F.gelu(q @ k.transpose(-2, -1))  # polynomial attention: no softmax, no SDPA
        x = (att @ v).transpose(1, 2).reshape(B, T, C)
        logits = self.head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
"""


def test_attention_without_sdpa_or_softmax_is_named_manual_not_flash(tmp_path):
    from pytest_gptcfg.engine.usermodel import model_factory

    (tmp_path / "model.py").write_text(SCORES_WITHOUT_SOFTMAX)
    factory = model_factory(tmp_path / "model.py")
    spec = StepSpec(ModelShape(1, 2, 64, 64, 512, False, 0.0), 2, 64, 1, "bfloat16", False)
    result = check_memory(
        dataclasses.replace(spec, model_factory=factory),
        get_profile("a100-80gb"),
        80 * GiB,
        mode="simulate",
    )
    assert result.attention_kernel == "manual"
