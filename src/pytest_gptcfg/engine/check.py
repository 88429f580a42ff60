"""The memory check's entry points: run a step measured on CUDA or simulated, and search the
largest batch that fits. Importing this module imports torch."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # without NumPy installed torch warns while loading, which says nothing about the config
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch
    import torch._subclasses.fake_tensor

from gptlint.estimate import estimate_memory, largest_fitting
from gptlint.gpus import GpuProfile
from gptlint.run import StepSpec
from pytest_gptcfg.chart import write_breakdown_svg
from pytest_gptcfg.engine import cuda
from pytest_gptcfg.engine.compiledstep import CompiledUnavailable, simulate_compiled
from pytest_gptcfg.engine.simulate import simulate
from pytest_gptcfg.engine.snapshot import (
    SnapshotRecorder,
    dump_cuda_snapshot,
    record_cuda_history,
    stop_cuda_history,
)
from pytest_gptcfg.engine.usermodel import UserModelError, model_factory
from pytest_gptcfg.results import MemoryResult

__all__ = [
    "UserModelError",
    "analytical_estimate",
    "check_memory",
    "find_max_batch_size",
    "import_torch",
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
) -> MemoryResult:
    """Run the step of `spec` and judge its peak against `budget_bytes`.

    `mode`: 'cuda' measures on GPU `device_index`, 'simulate' runs the step on fake tensors,
    'auto' measures when CUDA is available and simulates otherwise. With `snapshot` (a
    `.pickle` path) the allocator's history is recorded and, if the step does not fit, written
    there for PyTorch's memory visualizer, with a breakdown chart beside it (`.svg`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'auto', 'cuda' or 'simulate', got {mode!r}")
    if mode == "auto":
        mode = "cuda" if torch.cuda.is_available() else "simulate"
    if mode == "cuda":
        result = _measure(spec, profile, budget_bytes, device_index, snapshot)
        result.compiled = spec.compile  # cuda.measure runs torch.compile when the spec does
        return result
    recorder = SnapshotRecorder() if snapshot is not None else None
    result = _simulate_compiled(spec, profile, budget_bytes, recorder) if spec.compile else None
    if isinstance(result, str):
        fallback, result = result, None
        recorder = SnapshotRecorder() if snapshot is not None else None
    else:
        fallback = None
    if result is None:
        result = simulate(spec, profile, budget_bytes, recorder=recorder)
        if fallback is not None:
            result.notes.append(f"torch.compile not simulated ({fallback}): the eager step was")
    if recorder is not None and not result.fits:
        _keep_artifacts(result, recorder.dump(snapshot))
    return result


def _simulate_compiled(
    spec: StepSpec, profile: GpuProfile, budget_bytes: int, recorder: SnapshotRecorder | None
) -> MemoryResult | str:
    """The compiled step simulated, or why it could not be (a note, never a traceback)."""
    try:
        return simulate_compiled(spec, profile, budget_bytes, recorder=recorder)
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
        _keep_artifacts(result, dump_cuda_snapshot(snapshot))
    return result


def _keep_artifacts(result: MemoryResult, snapshot: Path) -> None:
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


def find_max_batch_size(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    mode: str = "simulate",
    limit: int = 4096,
) -> int:
    """The largest `batch_size` whose step fits the budget (0 if batch 1 does not); each
    probe runs a full check (gptlint's `largest_fitting` search)."""

    def fits(batch: int) -> bool:
        probe = dataclasses.replace(spec, batch_size=batch)
        return check_memory(probe, profile, budget_bytes, mode=mode).fits

    return largest_fitting(fits, limit)
