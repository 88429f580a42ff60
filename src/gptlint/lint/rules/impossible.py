"""What nanoGPT (or PyTorch under it) cannot run: the check GPT106 reports and GPT203 leaves to
it. Shared by the GPT1 and GPT2 rule families, so it is no family's module."""

from __future__ import annotations

from typing import Any

from gptlint.lint.rules.common import is_number
from gptlint.nanogpt.derive import PLAUSIBLE
from gptlint.nanogpt.schema import KV_HEAD_KEYS

# Keys used as a size or a `range()` count: what a float or a value < 1 breaks.
_SIZES = {
    "n_layer": "`range(n_layer)` builds the transformer blocks",
    "n_head": "CausalSelfAttention splits n_embd into n_head heads",
    "n_embd": "every Linear and embedding layer is n_embd wide",
    "block_size": "get_batch slices block_size tokens per sequence",
    "batch_size": "get_batch draws `torch.randint(..., (batch_size,))` sequences",
    "gradient_accumulation_steps": "`range(gradient_accumulation_steps)` runs the micro-steps",
    "eval_iters": "estimate_loss allocates `torch.zeros(eval_iters)` losses",
    "vocab_size": "the embedding has vocab_size rows",
    **{key: "the attention groups query heads by it" for key in KV_HEAD_KEYS},
}
# `iter_num % key` in train.py's loop.
_MODULO = ("eval_interval", "log_interval")
# torch.optim.AdamW's own argument checks.
_ADAMW = {
    "learning_rate": (0.0, None, "AdamW raises ValueError('Invalid learning rate')"),
    "weight_decay": (0.0, None, "AdamW raises ValueError('Invalid weight_decay value')"),
    "beta1": (0.0, 1.0, "AdamW raises ValueError('Invalid beta parameter at index 0')"),
    "beta2": (0.0, 1.0, "AdamW raises ValueError('Invalid beta parameter at index 1')"),
}


def problem(key: str, value: Any) -> str | None:
    """Why `key = value` cannot run, or None."""
    if not is_number(value):
        return None
    if key in _SIZES:
        if isinstance(value, float):
            return (
                f"{key}={value!r} is a float: {_SIZES[key]}, which needs an int (TypeError);"
                f" write {int(value)}"
                if value.is_integer()
                else f"{key}={value!r} is a float: {_SIZES[key]}, which needs an int (TypeError)"
            )
        if value < 1:
            return f"{key}={_show(value)} must be at least 1: {_SIZES[key]}"
        if value >= PLAUSIBLE:
            return (
                f"{key}={_show(value)} is implausibly large (10**15 or more): {_SIZES[key]},"
                " and nothing that size can be built or run"
            )
    if key in _MODULO and value == 0:
        return f"{key}=0: train.py computes `iter_num % {key}`, a ZeroDivisionError at iteration 0"
    if key == "dropout" and not 0 <= value < 1:
        return (
            f"dropout={value} is outside [0, 1): nn.Dropout raises ValueError outside [0, 1],"
            " and 1 zeroes every activation"
        )
    if key in _ADAMW:
        low, high, error = _ADAMW[key]
        if value < low or (high is not None and value >= high):
            bounds = f"[{low:g}, {high:g})" if high is not None else f">= {low:g}"
            return f"{key}={value} is outside {bounds}: {error} when train.py builds the optimizer"
    return None


def _show(value: int) -> str:
    """An int for a message: digits up to 30 of them, else its size (`2**63` stays readable,
    a 3,000-digit number does not flood the line)."""
    if abs(value) < 10**30:
        return str(value)
    return f"{'-' if value < 0 else ''}a {len(str(abs(value))):,}-digit number"
