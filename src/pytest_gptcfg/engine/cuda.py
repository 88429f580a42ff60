"""CUDA mode: run the step on a real GPU and read PyTorch's peak memory statistics.

The CUDA context is measured as the device memory this process uses outside PyTorch's caching
allocator: `nvidia-smi`'s used memory before CUDA is initialised is taken as the baseline of other
processes, then context = (total - free) - memory_reserved - baseline, recorded in the verdict
(`context_bytes`, and a note beside the profile's figure). The allocator is capped at
budget - context (`set_per_process_memory_fraction`), so a step that does not fit raises CUDA out
of memory, which is reported (`oom=True`) rather than raised. Everything is freed afterwards.

The breakdown uses `gptlint.runmodel.estimate.BREAKDOWN_LABELS`' keys where the allocator's
statistics can tell them apart: parameters and optimizer state are counted from the tensors
themselves, gradients as one fp32 copy of the parameters. Autocast's 16-bit weight copies and
the logits and loss cannot be told apart from the activations in a peak statistic, so they are
counted in `activations` (the simulation reports them under `weight_copies` and `logits_and_loss`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gptlint.facts.cudablocks import round_size
from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import MemoryMode
from gptlint.facts.units import MIB
from gptlint.runmodel.trainingrun import GPU_DEVICE_TYPE, StepSpec
from pytest_gptcfg.engine import kernels, torchapi
from pytest_gptcfg.engine.trainstep import (
    build_model,
    make_optimizers,
    parameter_counts,
    random_batches,
    resolve_dtype,
    run_training,
    step_module,
)
from pytest_gptcfg.results import MemoryResult, fits_budget

_baseline_used: dict[int, int] = {}
"""Bytes other processes used on each device before this process initialised CUDA."""


def _nvidia_smi_used(device_index: int) -> int | None:
    """Used memory of the device (bytes) as nvidia-smi reports it, or None if unavailable."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",")] if visible else None
    target = ids[device_index] if ids and device_index < len(ids) else str(device_index)
    try:
        query = ["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", target]
        out = subprocess.run(
            ["nvidia-smi", *query],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        return int(out.split()[0]) * MIB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _context_bytes(device: torch.device, notes: list[str]) -> int:
    free, total = torch.cuda.mem_get_info(device)
    outside_allocator = total - free - torch.cuda.memory_reserved(device)
    baseline = _baseline_used.get(device.index)
    if baseline is None:
        notes.append(
            "CUDA context measured as all device memory outside PyTorch's allocator "
            "(no nvidia-smi baseline): other processes on this GPU are counted in it"
        )
        return max(outside_allocator, 0)
    return max(outside_allocator - baseline, 0)


def _context_note(context: int, profile: GpuProfile) -> str:
    """The measured CUDA context, beside the figure the estimate and the simulation use."""
    return (
        f"CUDA context measured: {context / MIB:.0f} MiB (the {profile.name} profile models "
        f"{profile.context_bytes / MIB:.0f} MiB, {profile.context_source}; "
        "--gpt-cuda-context sets it)"
    )


def _initialise(device: torch.device) -> None:
    if device.index not in _baseline_used and not torch.cuda.is_initialized():
        used = _nvidia_smi_used(device.index)
        if used is not None:
            _baseline_used[device.index] = used
    torch.cuda.set_device(device)
    torch.empty(1, device=device)
    torch.cuda.synchronize(device)


def _is_oom(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, torch.cuda.OutOfMemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def inventory(
    model: torch.nn.Module, optimizers: Sequence[torch.optim.Optimizer]
) -> tuple[int, int, list[tuple[str, int]]]:
    """Allocator bytes of the parameters and of the optimizers' state, and the ten largest of
    them."""
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = [(f"parameter {n}", round_size(p.nbytes)) for n, p in model.named_parameters()]
    parameters = sum(size for _, size in tensors)
    state_bytes = 0
    states = [item for optimizer in optimizers for item in optimizer.state.items()]
    for p, state in states:
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                size = round_size(value.nbytes)
                state_bytes += size
                tensors.append((f"{key} of {names.get(id(p), 'parameter')}", size))
    return parameters, state_bytes, sorted(tensors, key=lambda t: t[1], reverse=True)[:10]


@dataclass
class Measured:
    """What one capped run on a CUDA device measured (`measure_capped`)."""

    device_name: str
    capability: tuple[int, int]
    dtype: torch.dtype
    peak_allocated: int
    peak_reserved: int
    context: int
    oom: bool
    parameters: int
    optimizer_state: int
    largest: list[tuple[str, int]]
    params: tuple[int, int] | None = None  # the model's `parameter_counts`, once built


Runner = Callable[[torch.device, torch.dtype, Callable[[], Any], dict[str, Any]], None]
"""Builds the model on the device and runs it under the autocast context it is given (for the
dtype it is given); puts the model (and its optimizers, if any) in the dict it is given, so
that they can be counted even when the run runs out of memory."""


def measure_capped(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    device_index: int,
    notes: list[str],
    run: Runner,
) -> Measured:
    """`run` on CUDA device `device_index` with the allocator capped at budget - context: the
    peaks, the context, whether it ran out of memory, and the parameters and optimizer state
    it held. Everything is freed and the cap lifted afterwards; notes go to `notes`."""
    if not torch.cuda.is_available():
        raise RuntimeError("CUDA mode needs a CUDA GPU; use mode='simulate'")
    device = torch.device("cuda", device_index)
    _initialise(device)
    name = torch.cuda.get_device_name(device)
    capability = torch.cuda.get_device_capability(device)
    total = torch.cuda.get_device_properties(device).total_memory
    if not profile.label.startswith(name):
        notes.append(f"measured on {name}; its kernels apply, the budget is {profile.label}'s")
    if budget_bytes > total:
        notes.append(f"the budget exceeds this GPU's {total / 2**30:.1f} GiB: capped at the GPU")
    dtype = resolve_dtype(spec.dtype)
    _free_cached(device)
    context_before = _context_bytes(device, [])
    base_allocated = torch.cuda.memory_allocated(device)
    base_reserved = torch.cuda.memory_reserved(device)
    fraction = min(1.0, max(budget_bytes - context_before, 0) / total)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    torch.cuda.reset_peak_memory_stats(device)
    oom = False
    parameters = optimizer_state = 0
    largest: list[tuple[str, int]] = []
    params = None
    held: dict[str, Any] = {}
    try:
        torch.manual_seed(0)
        run(device, dtype, lambda: torch.autocast("cuda", dtype=dtype), held)
        torch.cuda.synchronize(device)
    except Exception as error:
        if not _is_oom(error):
            raise
        oom = True
        notes.append("CUDA out of memory under the cap of budget - context")
    finally:
        if held.get("model") is not None:
            optimizers = held.get("optimizers", [])
            parameters, optimizer_state, largest = inventory(held["model"], optimizers)
            params = parameter_counts(held["model"])
        peak_allocated = torch.cuda.max_memory_allocated(device) - base_allocated
        peak_reserved = torch.cuda.max_memory_reserved(device) - base_reserved
        context = max(context_before, _context_bytes(device, notes))
        held.clear()
        _release(device, spec.compile)
    notes.append(_context_note(context, profile))
    return Measured(
        name,
        capability,
        dtype,
        peak_allocated,
        peak_reserved,
        context,
        oom,
        parameters,
        optimizer_state,
        largest,
        params,
    )


def measured_result(
    spec: StepSpec,
    budget_bytes: int,
    measured: Measured,
    breakdown: dict[str, int],
    notes: list[str],
    dropout: float,
) -> MemoryResult:
    """The verdict of a measured run (the step, or the evaluation with `dropout` 0)."""
    head_dim = spec.shape.n_embd // spec.shape.n_head
    attention = kernels.attention_kernel(measured.capability, measured.dtype, head_dim, dropout)
    return MemoryResult(
        mode=MemoryMode.MEASURED,
        fits=fits_budget(measured.peak_reserved, measured.context, budget_bytes)
        and not measured.oom,
        peak_allocated_bytes=measured.peak_allocated,
        peak_reserved_bytes=measured.peak_reserved,
        context_bytes=measured.context,
        budget_bytes=budget_bytes,
        breakdown=breakdown,
        largest_tensors=measured.largest,
        oom=measured.oom,
        torch_version=torch.__version__,
        device_name=measured.device_name,
        attention_kernel=attention,
        notes=notes,
        compiled=spec.compile,  # the run was torch.compile'd when the spec says so
        params=measured.params,
    )


def measure(
    spec: StepSpec, profile: GpuProfile, budget_bytes: int, device_index: int = 0
) -> MemoryResult:
    """Run the step of `spec` on CUDA device `device_index`, capped at budget - context."""
    notes: list[str] = []

    def train(
        device: torch.device,
        dtype: torch.dtype,
        autocast: Callable[[], Any],
        held: dict[str, Any],
    ) -> None:
        with torch.device(device):
            held["model"] = model = build_model(spec)
        held["optimizers"] = optimizers = make_optimizers(model, spec, GPU_DEVICE_TYPE)
        step_model = step_module(model, spec)
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        run_training(
            step_model,
            optimizers,
            scaler,
            random_batches(spec, device),
            autocast,
            spec,
        )

    measured = measure_capped(spec, profile, budget_bytes, device_index, notes, train)
    parameters = gradients = measured.parameters
    breakdown = {
        "parameters": parameters,
        "gradients": gradients,
        "optimizer_state": measured.optimizer_state,
        "activations": max(
            measured.peak_allocated - parameters - gradients - measured.optimizer_state, 0
        ),
        "logits_and_loss": 0,
        "allocator_overhead": measured.peak_reserved - measured.peak_allocated,
        "cuda_context": measured.context,
    }
    notes.append(
        "measured breakdown: gradients taken as one fp32 copy of the parameters; autocast "
        "weight copies, logits and loss are counted in activations"
    )
    if spec.compile:
        notes.append("the step ran under torch.compile, as the config asks")
    return measured_result(spec, budget_bytes, measured, breakdown, notes, spec.shape.dropout)


def _free_cached(device: torch.device) -> None:
    """Collect garbage, drop cuBLAS workspaces (each check allocates its own) and cached blocks."""
    gc.collect()
    torch.cuda.synchronize(device)
    torchapi.clear_cublas_workspaces()
    torch.cuda.empty_cache()


def _release(device: torch.device, compiled: bool) -> None:
    """Free what the step left so the next config starts clean; lift the cap."""
    if compiled:
        with contextlib.suppress(Exception):
            torchapi.reset_dynamo()
    _free_cached(device)
    torch.cuda.set_per_process_memory_fraction(1.0, device)
