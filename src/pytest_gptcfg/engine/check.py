"""The memory check's entry points: run a step measured on CUDA or simulated, and search the
largest batch that fits. Importing this module imports torch."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # without NumPy installed torch warns while loading, which says nothing about the config
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import MemoryMode
from gptlint.runmodel.estimate import bracket, estimate_memory, largest_batch, largest_fitting
from gptlint.runmodel.trainingrun import StepSpec
from pytest_gptcfg.chart import write_breakdown_svg
from pytest_gptcfg.engine import cuda
from pytest_gptcfg.engine.compiled import untested_release
from pytest_gptcfg.engine.compiledstep import (
    CompiledUnavailable,
    simulate_compiled,
)
from pytest_gptcfg.engine.simulate import simulate
from pytest_gptcfg.engine.snapshot import (
    SnapshotRecorder,
    dump_cuda_snapshot,
    record_cuda_history,
    stop_cuda_history,
)
from pytest_gptcfg.engine.usermodel import UserModelError, model_factory
from pytest_gptcfg.results import MemoryResult, fits_budget

__all__ = [
    "UserModelError",
    "analytical_estimate",
    "check_memory",
    "find_max_batch_size",
    "import_torch",
    "keep_artifacts",
    "model_factory",
]

MODES = ("auto", "cuda", "simulate")


def import_torch() -> Any:
    """torch, with its fake-tensor module loaded (both imported with this module)."""
    return torch


def check_memory(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    mode: str = "auto",
    device_index: int = 0,
    snapshot: Path | None = None,
    searching: bool = False,
) -> MemoryResult:
    """Run the step of `spec` and judge its peak against `budget_bytes`.

    `mode`: 'cuda' measures on GPU `device_index`, 'simulate' runs the step on fake tensors,
    'auto' measures when CUDA is available and simulates otherwise. With `snapshot` (a
    `.pickle` path) the allocator's history is recorded and, if the step does not fit, written
    there for PyTorch's memory visualizer, with a breakdown chart beside it (`.svg`).
    `searching`: a search of the largest batch that fits follows, whatever the verdict (a
    compiled step is then planned from the graphs of every batch, even on a cold cache).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'auto', 'cuda' or 'simulate', got {mode!r}")
    if mode == "auto":
        mode = "cuda" if torch.cuda.is_available() else "simulate"
    if mode == "cuda":
        return _measure(spec, profile, budget_bytes, device_index, snapshot)
    recorder = SnapshotRecorder() if snapshot is not None else None
    if not spec.compile:
        result = simulate(spec, profile, budget_bytes, recorder=recorder)
    else:
        planned = compiled_or_reason(
            lambda: simulate_compiled(spec, profile, budget_bytes, recorder, searching)
        )
        if isinstance(planned, str):
            # a fresh recorder for the eager upper bound (the failed plan's events are not the
            # step's); an estimate runs no step and has no snapshot
            own_model = snapshot is not None and spec.model_factory is not None
            recorder = SnapshotRecorder() if own_model else None
            planned = compiled_fallback(spec, profile, budget_bytes, planned, recorder)
        result = planned
    if recorder is not None and snapshot is not None and not result.fits:
        keep_artifacts(result, recorder.dump(snapshot))
    return result


def compiled_fallback(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    reason: str,
    recorder: SnapshotRecorder | None = None,
) -> MemoryResult:
    """The verdict for a run that compiles when its compiled step could not be simulated
    (`reason`): gptlint's analytical estimate of the compiled step, for nanoGPT's model; for
    a project's own model, which the estimate does not describe, its eager step simulated,
    labelled as what it is: an upper bound (torch.compile frees what eager keeps), recorded by
    `recorder` (an estimate runs no step: it records nothing)."""
    why = f"torch.compile not simulated: {reason}"
    untested = untested_release()
    if untested is not None:  # say which release could not be read
        why += f" ({untested})"
    if spec.model_factory is None:
        return estimated_result(spec, profile, budget_bytes, [why])
    result = simulate(spec, profile, budget_bytes, recorder=recorder, upper_bound=True)
    result.notes.append(
        f"{why}; this run compiles, and the eager step simulated here is an upper bound of its "
        "peak, not its figure"
    )
    return result


def estimated_result(
    spec: StepSpec, profile: GpuProfile, budget_bytes: int, notes: list[str]
) -> MemoryResult:
    """gptlint's analytical estimate of `spec`'s step as a verdict (mode `estimated`)."""
    estimate = estimate_memory(spec, profile)
    context = estimate.terms["cuda_context"]
    reserved = estimate.total - context
    tensors = estimate.tensors
    notes = [
        *notes,
        f"estimated (no step run): gptlint's analytical estimate of the "
        f"{'compiled' if spec.compile else 'eager'} step, as `gptlint` reports it for GPT501",
    ]
    return MemoryResult(
        mode=MemoryMode.ESTIMATED,
        fits=fits_budget(reserved, context, budget_bytes),
        peak_allocated_bytes=tensors,
        peak_reserved_bytes=reserved,
        context_bytes=context,
        budget_bytes=budget_bytes,
        breakdown=dict(estimate.terms),
        largest_tensors=[],
        oom=False,
        torch_version=torch.__version__,
        device_name=f"{profile.label} (estimated)",
        attention_kernel=estimate.kernel,
        notes=notes,
        compiled=spec.compile,
    )


def compiled_or_reason(
    simulate: Callable[[], MemoryResult], passing: tuple[type[Exception], ...] = ()
) -> MemoryResult | str:
    """The compiled step `simulate()` gives (nanoGPT's or nanochat's), or why it could not be
    had (a note, never a traceback); the errors in `passing` are raised as they are."""
    try:
        return simulate()
    except passing:
        raise
    except CompiledUnavailable as why:
        return str(why)
    except Exception as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return f"the compiled simulation failed: {type(error).__name__}: {first}"


def _measure(
    spec: StepSpec, profile: GpuProfile, budget_bytes: int, device_index: int, snapshot: Path | None
) -> MemoryResult:
    if snapshot is None:
        return cuda.measure(spec, profile, budget_bytes, device_index=device_index)
    record_cuda_history()
    try:
        result = cuda.measure(spec, profile, budget_bytes, device_index=device_index)
    except BaseException:
        stop_cuda_history()
        raise
    if result.fits:
        stop_cuda_history()
    else:
        keep_artifacts(result, dump_cuda_snapshot(snapshot))
    return result


def keep_artifacts(result: MemoryResult, snapshot: Path) -> None:
    """Write the breakdown chart beside a dumped snapshot and name both in the result."""
    chart = write_breakdown_svg(result, snapshot.with_suffix(".svg"))
    result.notes.append(
        f"memory snapshot: {snapshot} (open it at https://pytorch.org/memory_viz);"
        f" breakdown chart: {chart}"
    )


def analytical_estimate(spec: StepSpec, profile: GpuProfile) -> int:
    """gptlint's analytical estimate (no torch) of the tensors live at the peak of `spec`'s
    step, in bytes, to set beside a measured or simulated peak allocated."""
    return estimate_memory(spec, profile).tensors


FIXED_CATEGORIES = ("parameters", "gradients", "optimizer_state", "weight_copies", "cuda_context")
"""Breakdown keys that do not grow with the batch: a first guess of the peak's intercept."""

UNCAPPED = 1 << 62
"""The budget of a probe run without the memory cap, to see the peak the step would reach."""


def find_max_batch_size(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    mode: str = "simulate",
    limit: int = 4096,
    known: MemoryResult | None = None,
    probed: list[int] | None = None,
) -> int:
    """The largest `batch_size` whose step fits the budget (0 if batch 1 does not).

    Each probe runs a full check (`largest_fitting_affine`'s search). `known`, the result of
    this same check (mode and budget) for `spec.batch_size`, saves a probe; `probed`, if
    given, receives the batch sizes checked, in order.
    """

    def probe(batch: int, capped: bool) -> MemoryResult:
        if probed is not None:
            probed.append(batch)
        batch_spec = dataclasses.replace(spec, batch_size=batch)
        budget = budget_bytes if capped else UNCAPPED
        return check_memory(batch_spec, profile, budget, mode=mode, searching=True)

    if known is not None and known.mode == MemoryMode.ESTIMATED:
        return largest_batch(spec, profile, budget_bytes, limit)  # as the estimate was made
    if known is not None and known.upper_bound:  # its probes are the eager step's, as it was
        spec = dataclasses.replace(spec, compile=False)
    start = min(max(spec.batch_size, 1), limit)
    known = known if known is not None and spec.batch_size == start else None
    return largest_fitting_affine(probe, budget_bytes, start, limit, known)


def largest_fitting_affine(
    probe: Callable[[int, bool], MemoryResult],
    budget_bytes: int,
    start: int,
    limit: int = 4096,
    known: MemoryResult | None = None,
) -> int:
    """The largest batch in 1..`limit` whose check fits `budget_bytes` (0 if not even 1): the
    answer of gptlint's `largest_fitting` (doubling, then bisecting) for a check that fits up to
    some batch and fails above it, in fewer probes.

    `probe(batch, capped)` checks `batch` against the budget (`capped`) or with no memory cap;
    `known` is a capped result for `start`. Within one attention kernel and one step kind the
    peak (reserved + context) is affine in the batch up to the allocator's rounding, so:

    1. `start` is probed without the cap (unless `known` fits: a run that fits never met the
       cap); from its breakdown (`FIXED_CATEGORIES` held, the rest scaled with the batch) the
       batch where the budget runs out is guessed and probed without the cap too;
    2. the line through the two peaks predicts the answer;
    3. the answer is verified fitting, and its neighbour above verified not fitting, with one
       capped probe each, unless already known: an uncapped probe whose peak fits the budget
       is the capped run itself (the cap never acted), and a capped `known` is what it is;
    4. if the neighbour above fits too (a capped run releases the allocator's cached segments
       before it fails: it fits while its tensors do), steps 2 and 3 again with the line
       through the tensors' peaks (allocated + context);
    5. if a verification disagrees, or the points ran different kernels or steps, bisection
       between the largest batch known to fit and the smallest known not to (doubling when
       none is known not to) finds the answer as `largest_fitting` would.
    """
    fits: dict[int, bool] = {}
    points: dict[int, MemoryResult] = {}

    def peak(result: MemoryResult) -> int:
        return result.peak_reserved_bytes + result.context_bytes

    def uncapped(batch: int) -> MemoryResult:
        if batch not in points:
            points[batch] = probe(batch, False)
            if peak(points[batch]) <= budget_bytes and not points[batch].oom:
                fits[batch] = True
        return points[batch]

    def check(batch: int) -> bool:
        if batch not in fits:
            result = probe(batch, True)
            fits[batch] = result.fits
            if result.fits:  # a capped run that fits has its peak: a point too
                points.setdefault(batch, result)
        return fits[batch]

    if known is not None:
        fits[start] = known.fits
        if known.fits:
            points[start] = known
    if fits.get(1) is False:  # batch 1 does not fit: none does (largest_fitting's answer)
        return 0
    first = uncapped(start)
    kind = (first.attention_kernel, first.compiled)
    fixed = sum(first.breakdown.get(key, 0) for key in FIXED_CATEGORIES)
    per_batch = (peak(first) - fixed) / start
    guess = int((budget_bytes - fixed) // per_batch) if per_batch > 0 else 2 * start
    second = min(max(guess, 1), limit)
    if second == start:
        second = start + 1 if start < limit else start - 1
    if second >= 1:
        uncapped(second)

    def predict(good: int, measure: Callable[[MemoryResult], int] = peak) -> int | None:
        """Where the budget runs out: the slope of the two points farthest apart (the least
        disturbed by the allocator's rounding), through the point nearest the last batch known
        to fit; None when the points disagree on the kernel or step, or do not rise."""
        if len(points) < 2 or any(
            (r.attention_kernel, r.compiled) != kind for r in points.values()
        ):
            return None
        low, high = min(points), max(points)
        slope = (measure(points[high]) - measure(points[low])) / (high - low)
        if slope <= 0:
            return None
        near = min(points, key=lambda batch: (abs(batch - good), batch))
        return near + int((budget_bytes - measure(points[near])) // slope)

    def allocated(result: MemoryResult) -> int:
        return result.peak_allocated_bytes + result.context_bytes

    # The bracket: `good` fits (0: nothing known to), `bad` does not (limit + 1: nothing known).
    guided = 2  # line-guided probes (the answer, its neighbour) before bisection takes over
    measure = peak  # what the line is drawn through
    first_prediction = None
    while True:
        good, bad = bracket(fits, limit)
        if good >= bad:  # not monotone: bisect as largest_fitting does
            return largest_fitting(check, limit)
        if bad - good <= 1:
            return good
        predicted = predict(good, measure) if guided > 0 else None
        first_prediction = predicted if first_prediction is None else first_prediction
        if predicted is not None and predicted >= bad:  # the line passed a failing check
            guided, predicted = 0, None
        if (
            first_prediction is not None
            and good > first_prediction
            and bad == limit + 1
            and measure is peak
        ):
            # more fits than the peaks say (the cap releases cached segments before it fails a
            # run): a capped run fits while its tensors do, so the line through the tensors'
            # peaks guides the search from here (its answer, its neighbour)
            measure, guided = allocated, 2
            predicted = predict(good, measure)
        if predicted is not None:
            guided -= 1
            # the predicted answer, or the batch above the largest known to fit
            candidate = min(max(predicted, good + 1), bad - 1)
        elif bad == limit + 1 and good > 0:
            candidate = min(2 * good, limit)
        else:
            candidate = (good + bad) // 2 if good > 0 else 1
        check(candidate)
