"""Memory check interface: the step to run, the verdict, and the entry points.

Importing this module does not import torch; the engines (`cuda`, `simulate`) are imported
when a check runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gptlint.run import StepSpec

if TYPE_CHECKING:
    from gptlint.gpus import GpuProfile


@dataclass
class MemoryResult:
    """The verdict of one check; `fits` is `peak_reserved_bytes + context_bytes <= budget_bytes`."""

    mode: str
    fits: bool
    peak_allocated_bytes: int
    peak_reserved_bytes: int
    context_bytes: int
    budget_bytes: int
    breakdown: dict[str, int]
    largest_tensors: list[tuple[str, int]]
    oom: bool
    torch_version: str
    device_name: str
    attention_kernel: str
    notes: list[str] = field(default_factory=list)


def fits_budget(peak_reserved_bytes: int, context_bytes: int, budget_bytes: int) -> bool:
    """The rule both modes apply."""
    return peak_reserved_bytes + context_bytes <= budget_bytes


def check_memory(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    mode: str = "auto",
    device_index: int = 0,
    snapshot: Path | None = None,
) -> MemoryResult:
    """Run the step of `spec` and judge its peak against `budget_bytes`.

    `mode`: 'cuda' measures on GPU `device_index`, 'simulate' runs the step on fake tensors,
    'auto' measures when CUDA is available and simulates otherwise. With `snapshot` (a
    `.pickle` path) the allocator's history is recorded and, if the step does not fit, written
    there for PyTorch's memory visualizer, with a breakdown chart beside it (`.svg`).
    """
    if mode not in ("auto", "cuda", "simulate"):
        raise ValueError(f"mode must be 'auto', 'cuda' or 'simulate', got {mode!r}")
    torch = import_torch()
    if mode == "auto":
        mode = "cuda" if torch.cuda.is_available() else "simulate"
    if mode == "cuda":
        return _measure(spec, profile, budget_bytes, device_index, snapshot)
    from pytest_gptcfg.simulate import simulate
    from pytest_gptcfg.snapshot import SnapshotRecorder

    recorder = SnapshotRecorder() if snapshot is not None else None
    result = simulate(spec, profile, budget_bytes, recorder=recorder)
    if recorder is not None and not result.fits:
        _keep_artifacts(result, recorder.dump(snapshot))
    return result


def import_torch():
    """torch, with its fake-tensor module loaded; without NumPy installed torch warns about it
    while loading, which says nothing about the config being checked."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
        import torch._subclasses.fake_tensor

    return torch


def _measure(
    spec: StepSpec, profile: GpuProfile, budget_bytes: int, device_index: int, snapshot: Path | None
) -> MemoryResult:
    from pytest_gptcfg.cuda import measure
    from pytest_gptcfg.snapshot import dump_cuda_snapshot, record_cuda_history, stop_cuda_history

    if snapshot is None:
        return measure(spec, profile, budget_bytes, device_index=device_index)
    record_cuda_history()
    try:
        result = measure(spec, profile, budget_bytes, device_index=device_index)
    except BaseException:
        stop_cuda_history()
        raise
    if result.fits:
        stop_cuda_history()
    else:
        _keep_artifacts(result, dump_cuda_snapshot(snapshot))
    return result


def _keep_artifacts(result: MemoryResult, snapshot: Path) -> None:
    """Write the breakdown chart beside a dumped snapshot and name both in the result."""
    from pytest_gptcfg.chart import write_breakdown_svg

    chart = write_breakdown_svg(result, snapshot.with_suffix(".svg"))
    result.notes.append(
        f"memory snapshot: {snapshot} (open it at https://pytorch.org/memory_viz);"
        f" breakdown chart: {chart}"
    )


def analytical_estimate(spec: StepSpec, profile: GpuProfile) -> int:
    """gptlint's analytical estimate (no torch) of the tensors live at the peak of `spec`'s
    step, in bytes, to set beside a measured or simulated peak allocated."""
    from gptlint.estimate import estimate_memory

    return estimate_memory(spec, profile).tensors


def find_max_batch_size(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    mode: str = "simulate",
    limit: int = 4096,
) -> int:
    """The largest `batch_size` whose step fits the budget (0 if batch 1 does not); each
    probe runs a full check (gptlint's `largest_fitting` search)."""
    from gptlint.estimate import largest_fitting

    def fits(batch: int) -> bool:
        probe = dataclasses.replace(spec, batch_size=batch)
        return check_memory(probe, profile, budget_bytes, mode=mode).fits

    return largest_fitting(fits, limit)
