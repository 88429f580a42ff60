"""The evaluation train.py runs for an eval-only config, measured on CUDA or simulated.

With `eval_only = True` (nanoGPT's `eval_gpt2*.py`) train.py builds the model, creates its
optimizer (AdamW holds no memory before its first step) and fetches the first batch; at
iteration 0 it runs `estimate_loss()` and exits before any backward pass or optimizer step:
`model.eval()`, then, under `torch.no_grad()`, `eval_iters` forward passes per split (train,
val) at batch_size x block_size inside the autocast context. So no gradients, no AdamW state,
no saved activations and no dropout masks: the peak is the parameters, autocast's weight
copies and one forward's transient activations, with the previous pass's logits and loss still
referenced (as in `estimate_loss`, where they are rebound only by the next forward).

The simulation runs this on fake tensors with the training simulation's pieces (`simulate`'s
CUDA behaviour and cuBLAS workspace, `tracker`, `allocator`); the measurement runs it on a GPU
under the same cap as `cuda.measure`. `EVAL_ITERS_CHECKED` passes per split are run: memory is
steady from the second on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

from gptlint.facts.gpus import GpuProfile
from gptlint.runmodel.estimate import BREAKDOWN_LABELS
from gptlint.runmodel.trainingrun import StepSpec
from pytest_gptcfg.engine import cuda
from pytest_gptcfg.engine.allocator import CachingAllocator
from pytest_gptcfg.engine.check import UNCAPPED, largest_fitting_affine
from pytest_gptcfg.engine.simulate import (
    CudaBehaviour,
    build_fake_model,
    copy_labeller,
    simulated_note,
    simulated_result,
    track_model,
)
from pytest_gptcfg.engine.tracker import StorageTracker
from pytest_gptcfg.engine.trainstep import (
    build_model,
    random_batches,
    resolve_dtype,
    step_module,
)
from pytest_gptcfg.results import MemoryResult

EVAL_ITERS_CHECKED = 2
"""Forward passes per split that the check runs (train.py runs `eval_iters`, 200 by default)."""

SPLITS = ("train", "val")


def run_evaluation(
    model: torch.nn.Module,
    get_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    autocast: Callable[[], AbstractContextManager[object]],
    iters: int = EVAL_ITERS_CHECKED,
) -> None:
    """train.py's first batch, then `estimate_loss()`: `iters` no-grad forwards per split."""
    first_batch = get_batch()  # train.py fetches it before the loop; it stays referenced
    model.eval()
    logits = loss = None
    with torch.no_grad():
        for _split in SPLITS:
            for _ in range(iters):
                X, Y = get_batch()
                with autocast():
                    logits, loss = model(X, Y)
    model.train()
    del first_batch, logits, loss


def check_eval(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    mode: str = "simulate",
    device_index: int = 0,
) -> MemoryResult:
    """The evaluation of `spec` judged against `budget_bytes`: 'cuda' measures it on GPU
    `device_index`, 'simulate' runs it on fake tensors."""
    if mode == "auto":
        mode = "cuda" if torch.cuda.is_available() else "simulate"
    if mode == "cuda":
        return measure_eval(spec, profile, budget_bytes, device_index)
    if mode != "simulate":
        raise ValueError(f"mode must be 'auto', 'cuda' or 'simulate', got {mode!r}")
    return simulate_eval(spec, profile, budget_bytes)


def find_max_eval_batch_size(
    spec: StepSpec, profile: GpuProfile, budget_bytes: int, limit: int = 4096
) -> int:
    """The largest `batch_size` whose evaluation fits (0 if batch 1 does not), simulated, with
    the training step's search (`check.largest_fitting_affine`: a line through two probes,
    verified)."""

    def probe(batch: int, capped: bool) -> MemoryResult:
        batch_spec = dataclasses.replace(spec, batch_size=batch)
        return simulate_eval(batch_spec, profile, budget_bytes if capped else UNCAPPED)

    start = min(max(spec.batch_size, 1), limit)
    return largest_fitting_affine(probe, budget_bytes, start, limit)


def simulate_eval(spec: StepSpec, profile: GpuProfile, budget_bytes: int) -> MemoryResult:
    """The evaluation of `spec` on fake tensors, as the training simulation runs its step."""
    context = profile.context_bytes
    notes = [
        simulated_note(profile),
        "eval_only: train.py evaluates (no_grad forwards, train and val splits) and exits "
        "before the first training step",
    ]
    dtype = resolve_dtype(spec.dtype)
    lower = None if dtype == torch.float32 else dtype
    allocator = CachingAllocator(limit=max(budget_bytes - context, 0))
    tracker = StorageTracker(allocator, spec.batch_size * spec.block_size * spec.shape.vocab_size)
    names: dict[int, str] = {}
    behaviour = CudaBehaviour(lower, profile.compute_capability, copy_labeller(tracker, names))
    with tracker.fake_mode() as fake, torch.device("cpu"):
        model, params = build_fake_model(fake, spec)
        # one cuBLAS handle: no backward, so autograd's device thread never runs a matmul
        track_model(tracker, model, profile.compute_capability, names, handles=1)
        run_evaluation(model, random_batches(spec, "cpu"), lambda: behaviour)
        del model
    result = simulated_result(
        spec,
        profile,
        budget_bytes,
        allocator,
        tracker.at_peak(),
        context,
        behaviour.attention_kernels,
        notes,
        what="evaluation",
        params=params,
        upper_bound=spec.compile,
    )
    if spec.compile:
        result.notes.append(
            "torch.compile not simulated for the evaluation: its forward passes were simulated"
            " eager, an upper bound of the compiled evaluation's peak"
        )
    return result


def measure_eval(
    spec: StepSpec, profile: GpuProfile, budget_bytes: int, device_index: int = 0
) -> MemoryResult:
    """The evaluation of `spec` on CUDA device `device_index`, capped at budget - context as
    `cuda.measure` caps the training step (`cuda.measure_capped`)."""
    notes: list[str] = [
        "eval_only: train.py evaluates (no_grad forwards, train and val splits) and exits "
        "before the first training step"
    ]

    def evaluate(
        device: torch.device,
        dtype: torch.dtype,
        autocast: Callable[[], Any],
        held: dict[str, Any],
    ) -> None:
        with torch.device(device):
            held["model"] = model = build_model(spec)
        run_evaluation(
            step_module(model, spec),
            random_batches(spec, device),
            autocast,
        )

    measured = cuda.measure_capped(spec, profile, budget_bytes, device_index, notes, evaluate)
    breakdown = dict.fromkeys(BREAKDOWN_LABELS, 0)
    breakdown.update(
        parameters=measured.parameters,
        activations=max(measured.peak_allocated - measured.parameters, 0),
        allocator_overhead=measured.peak_reserved - measured.peak_allocated,
        cuda_context=measured.context,
    )
    return cuda.measured_result(spec, budget_bytes, measured, breakdown, notes, dropout=0.0)
