"""The memory check of one rank of a nanochat run (`base_train`, `chat_sft`, `base_eval`): the
step simulated on fake tensors with the checkout's own code, and the largest
`--device-batch-size` that fits. Importing this module imports torch.

A run that compiles (`ChatStep.compiled`) gets the compiled step (`chatcompiled`), or, where that
cannot be had, gptlint's analytical estimate of the compiled step with a note saying why: never
the eager figure, which is an upper bound of a compiled run's peak, not its figure. An eager step
(base_eval) is simulated eagerly (`chatstep`). fp8 (nanochat's `Float8Linear`) is not simulated
eagerly: such a step gets the estimate, with a note.

With a `snapshot` path, a simulated step that does not fit leaves its memory_viz snapshot there
and the breakdown chart beside it, as a nanoGPT config's check does (an estimate runs no step
and leaves none).
"""

from __future__ import annotations

import warnings
from pathlib import Path

with warnings.catch_warnings():
    # without NumPy installed torch warns while loading, which says nothing about the run
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import AttentionKernel, MemoryMode
from gptlint.runmodel.chatestimate import (
    DEVICE_BATCH_LADDER,
    estimate_chat_memory,
    largest_device_batch,
    with_device_batch,
)
from gptlint.runmodel.chatkernels import ChatAttention, fp8_use
from gptlint.runmodel.chatparams import parameter_counts
from gptlint.runmodel.chatrun import ChatStep
from pytest_gptcfg.engine.chatcompiled import simulate_chat_compiled
from pytest_gptcfg.engine.chatimport import ChatModelError
from pytest_gptcfg.engine.chatstep import simulate_chat_eager
from pytest_gptcfg.engine.check import compiled_or_reason, keep_artifacts
from pytest_gptcfg.engine.snapshot import SnapshotRecorder
from pytest_gptcfg.results import MemoryResult, fits_budget

__all__ = ["ChatModelError", "check_chat_memory", "find_max_device_batch"]

MODES = ("auto", "cuda", "simulate")


def check_chat_memory(
    step: ChatStep,
    checkout: Path,
    profile: GpuProfile,
    budget_bytes: int,
    mode: str = "auto",
    device_index: int = 0,
    snapshot: Path | None = None,
) -> MemoryResult:
    """One rank's peak of `step` on `profile` against `budget_bytes`, with the code of the
    nanochat checkout at `checkout` (gptlint's `find_checkout(...).root`).

    Measuring nanochat runs on CUDA is not implemented: `mode` 'cuda' (and 'auto' where CUDA
    is available) simulates, with a note saying so; `device_index` is the GPU it would measure
    on. With `snapshot` (a `.pickle` path), a simulated step that does not fit leaves a
    snapshot there for PyTorch's memory visualizer, with a breakdown chart beside it (`.svg`).
    Raises `ChatModelError` when the checkout's code cannot be imported or built.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'auto', 'cuda' or 'simulate', got {mode!r}")
    notes = []
    if mode == "cuda" or (mode == "auto" and torch.cuda.is_available()):
        notes.append(
            f"measuring nanochat runs on CUDA (GPU {device_index}) is not implemented: simulated"
        )
    fp8 = fp8_use(step, profile)
    if fp8.fails:
        notes.append(
            f"--fp8: {fp8.reason}: base_train fails at its first forward (checked without fp8)"
        )
    recorder = SnapshotRecorder() if snapshot is not None else None
    if step.compiled:
        result = _compiled(step, checkout, profile, budget_bytes, recorder)
    elif fp8.applies:
        why = "fp8 not simulated: nanochat's Float8Linear (torch._scaled_mm) does not run here"
        result = estimated_chat_result(step, profile, budget_bytes, [why])
    else:
        result = simulate_chat_eager(step, checkout, profile, budget_bytes, recorder)
    result.notes.extend(notes)
    simulated = result.mode != MemoryMode.ESTIMATED
    if recorder is not None and snapshot is not None and simulated and not result.fits:
        keep_artifacts(result, recorder.dump(snapshot))
    return result


def _compiled(
    step: ChatStep,
    checkout: Path,
    profile: GpuProfile,
    budget_bytes: int,
    recorder: SnapshotRecorder | None,
) -> MemoryResult:
    """The compiled step simulated, else gptlint's estimate of it with the reason (`recorder`
    gets the simulation's events; an estimate records none)."""
    planned = compiled_or_reason(
        lambda: simulate_chat_compiled(step, checkout, profile, budget_bytes, recorder),
        passing=(ChatModelError,),
    )
    if isinstance(planned, MemoryResult):
        return planned
    return estimated_chat_result(
        step, profile, budget_bytes, [f"torch.compile not simulated: {planned}"]
    )


def estimated_chat_result(
    step: ChatStep, profile: GpuProfile, budget_bytes: int, notes: list[str]
) -> MemoryResult:
    """gptlint's analytical estimate of `step` as a verdict (mode `estimated`)."""
    estimate = estimate_chat_memory(step, profile)
    context = estimate.terms["cuda_context"]
    reserved = estimate.total - context
    total = parameter_counts(step.shape)["total"]
    kind = "compiled" if step.compiled else "eager"
    notes = [
        *notes,
        f"estimated (no step run): gptlint's analytical estimate of the {kind} step, as "
        "`gptlint` reports it for the run script (GPT606)",
    ]
    return MemoryResult(
        mode=MemoryMode.ESTIMATED,
        fits=fits_budget(reserved, context, budget_bytes),
        peak_allocated_bytes=estimate.tensors,
        peak_reserved_bytes=reserved,
        context_bytes=context,
        budget_bytes=budget_bytes,
        breakdown=dict(estimate.terms),
        largest_tensors=[],
        oom=False,
        torch_version=torch.__version__,
        device_name=f"{profile.label} (estimated)",
        attention_kernel=_kernel(estimate.attention),
        notes=notes,
        compiled=step.compiled,
        params=(total, total),
    )


def _kernel(attention: ChatAttention) -> AttentionKernel:
    """The costliest kernel the step's attention runs (FA3 as flash)."""
    used = {attention.full} if attention.window is None else {attention.full, attention.window}
    for kernel in (AttentionKernel.MATH, AttentionKernel.EFFICIENT):
        if kernel in used:
            return kernel
    return AttentionKernel.FLASH


def find_max_device_batch(
    step: ChatStep,
    checkout: Path,
    profile: GpuProfile,
    budget_bytes: int,
    known: MemoryResult | None = None,
) -> int:
    """The largest `--device-batch-size` of nanochat's ladder (32, 16, 8, 4, 2, 1) whose step
    fits `budget_bytes` and that base_train accepts for the run's total batch size (with the
    gradient accumulation it recomputes); 0 if none does.

    `known` is this check's result for `step.device_batch_size` (not run again). The peak
    grows with the batch, so a batch above one that fails fails and one below one that fits
    fits, without a check. The search starts at gptlint's estimate of the answer and checks
    it and its neighbour above: where the estimate is right, two checks at most (none when
    `known` is one of them). A known estimate (no step could be simulated) is answered by the
    estimate, as it was made.
    """
    if known is not None and known.mode == MemoryMode.ESTIMATED:
        return largest_device_batch(step, profile, budget_bytes) or 0
    ladder = sorted(b for b in DEVICE_BATCH_LADDER if with_device_batch(step, b) is not None)
    if not ladder:
        return 0
    fits: dict[int, bool] = {}
    if known is not None:
        fits[step.device_batch_size] = known.fits

    def check(batch: int) -> bool:
        if any(ok and batch <= b for b, ok in fits.items()):
            return True
        if any(not ok and batch >= b for b, ok in fits.items()):
            return False
        candidate = with_device_batch(step, batch)
        assert candidate is not None  # on the ladder
        result = check_chat_memory(candidate, checkout, profile, budget_bytes, mode="simulate")
        fits[batch] = result.fits
        return result.fits

    predicted = largest_device_batch(step, profile, budget_bytes) or ladder[0]
    i = max((k for k, b in enumerate(ladder) if b <= predicted), default=0)
    if check(ladder[i]):
        while i + 1 < len(ladder) and check(ladder[i + 1]):
            i += 1
        return ladder[i]
    while i > 0:
        i -= 1
        if check(ladder[i]):
            return ladder[i]
    return 0
