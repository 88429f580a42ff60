"""The states the linter and the plugin pass around, as types rather than bare strings.

Each is a `str` enum: it compares equal to, prints as and serialises to its value, so
messages, JSON and SARIF keep the words users already see.
"""

from __future__ import annotations

from enum import Enum


class _Word(str, Enum):
    """An enum member that is also its word: `str(Severity.ERROR) == 'error'`."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)


class Severity(_Word):
    """How bad a finding is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class FixSafety(_Word):
    """Ruff's sense: an unsafe fix may change what the run does beyond the reported problem."""

    SAFE = "safe"
    UNSAFE = "unsafe"


class ValueKind(_Word):
    """Where a config key's effective value comes from."""

    DEFAULT = "default"  # the schema's default (nanoGPT's train.py, or a fork's)
    FILE = "file"  # an assignment in the config file
    UNKNOWN = "unknown"  # an import, exec or conditional block made it unknowable
    OVERRIDE = "override"  # a `KEY=VALUE` override


class AttentionKernel(_Word):
    """The kernel `F.scaled_dot_product_attention` runs, or `manual`: the model computes
    attention itself (nanoGPT's slow path, `self.flash = False`: scores, mask, softmax; or
    any other attention of its own, with no SDPA call)."""

    FLASH = "flash"
    EFFICIENT = "efficient"
    MATH = "math"
    MANUAL = "manual"

    @property
    def label(self) -> str:
        """`flash attention`, `memory-efficient attention`, `math attention`, `manual
        attention (computed in the model)`."""
        return {
            "flash": "flash attention",
            "efficient": "memory-efficient attention",
            "manual": "manual attention (computed in the model)",
        }.get(self.value, "math attention")


class MemoryMode(_Word):
    """How a memory verdict was reached."""

    MEASURED = "measured"  # on a CUDA device
    SIMULATED = "simulated"  # on fake tensors, no GPU
    ESTIMATED = "estimated"  # gptlint's analytical estimate (the compiled step, where its
    # simulation failed)
