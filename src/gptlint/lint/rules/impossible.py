"""What nanoGPT (or PyTorch under it) cannot run: the check GPT106 reports and GPT203 leaves to
it. Shared by the GPT1 and GPT2 rule families, so it is no family's module."""

from __future__ import annotations

from typing import Any

from gptlint.lint.rules.common import is_number
from gptlint.nanogpt.rejects import (
    ADAMW_RANGES,
    MODULO_KEYS,
    PLAUSIBLE,
    SIZE_KEYS,
    adamw_rejects,
    dropout_rejected,
    show,
)


def problem(key: str, value: Any) -> str | None:
    """Why `key = value` cannot run (`gptlint.nanogpt.rejects`), or None."""
    if not is_number(value):
        return None
    if key in SIZE_KEYS:
        use = SIZE_KEYS[key]
        if isinstance(value, float):
            return (
                f"{key}={value!r} is a float: {use}, which needs an int (TypeError);"
                f" write {int(value)}"
                if value.is_integer()
                else f"{key}={value!r} is a float: {use}, which needs an int (TypeError)"
            )
        if value < 1:
            return f"{key}={show(value)} must be at least 1: {use}"
        if value >= PLAUSIBLE:
            return (
                f"{key}={show(value)} is implausibly large (10**15 or more): {use},"
                " and nothing that size can be built or run"
            )
    if key in MODULO_KEYS and value == 0:
        return f"{key}=0: train.py computes `iter_num % {key}`, a ZeroDivisionError at iteration 0"
    if key == "dropout" and dropout_rejected(value):
        return (
            f"dropout={value} is outside [0, 1): nn.Dropout raises ValueError outside [0, 1],"
            " and 1 zeroes every activation"
        )
    if key in ADAMW_RANGES and adamw_rejects(key, value):
        accepted = ADAMW_RANGES[key]
        low, high = accepted.low, accepted.high
        bounds = f"[{low:g}, {high:g})" if high is not None else f">= {low:g}"
        return (
            f"{key}={value} is outside {bounds}: AdamW raises ValueError('{accepted.error}') when"
            " train.py builds the optimizer"
        )
    return None
