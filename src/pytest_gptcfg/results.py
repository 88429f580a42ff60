"""What a memory check concludes, shared by the engine and the pytest glue (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gptlint.facts.kinds import AttentionKernel, MemoryMode


@dataclass
class MemoryResult:
    """The verdict of one check; `fits` is `peak_reserved_bytes + context_bytes <= budget_bytes`.

    `breakdown` is keyed by `gptlint.runmodel.estimate.BREAKDOWN_LABELS`' keys, so the estimate, the
    simulation and the measurement compare key by key.
    """

    mode: MemoryMode
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
    attention_kernel: AttentionKernel
    notes: list[str] = field(default_factory=list)
    compiled: bool = False
    """Whether the step ran (or was simulated) as torch.compile runs it, not eager."""
    upper_bound: bool = False
    """Whether the figure bounds the run's peak from above rather than being it (the eager
    step of a project's own model, for a run that compiles)."""
    params: tuple[int, int] | None = None
    """The model that ran: its parameters as train.py prints them, and all of them
    (`trainstep.parameter_counts`); None where the model was not built."""


def fits_budget(peak_reserved_bytes: int, context_bytes: int, budget_bytes: int) -> bool:
    """The rule both modes apply."""
    return peak_reserved_bytes + context_bytes <= budget_bytes
