"""What nanoGPT's train.py (and PyTorch under it) rejects in a config's values, said once: the
keys it uses as a size or count, the size past which nothing is trained, the keys it takes
modulo, dropout's range and AdamW's, and how a value is shown in a message about them.
`derive` stops a run on them; GPT106 (`gptlint.lint.rules.impossible`) reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptlint.nanogpt.schema import KV_HEAD_KEYS

PLAUSIBLE = 10**15
"""Sizes at or beyond this are not settings anyone trains with: no run is derived from them,
GPT106 reports them, and the rules that compute with numbers skip them (as inf and nan)."""

SIZE_KEYS: dict[str, str] = {
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
"""The keys train.py uses as a size or a `range()` count, each with what uses it: an int of at
least 1 (a float or a value below 1 breaks it), and below `PLAUSIBLE`."""

MODULO_KEYS = ("eval_interval", "log_interval")
"""The keys train.py's loop takes `iter_num % key` of: 0 is a ZeroDivisionError."""


@dataclass(frozen=True)
class AdamWRange:
    """The values `torch.optim.AdamW.__init__` accepts for one setting, `low <= value` and
    `value < high` (no upper bound where `high` is None), and the ValueError it raises for
    the others (nan among them)."""

    low: float
    high: float | None
    error: str


ADAMW_RANGES: dict[str, AdamWRange] = {
    "learning_rate": AdamWRange(0.0, None, "Invalid learning rate"),
    "weight_decay": AdamWRange(0.0, None, "Invalid weight_decay value"),
    "beta1": AdamWRange(0.0, 1.0, "Invalid beta parameter at index 0"),
    "beta2": AdamWRange(0.0, 1.0, "Invalid beta parameter at index 1"),
}
"""The config keys train.py hands to AdamW whose values AdamW checks."""


def adamw_rejects(key: str, value: float) -> bool:
    """Whether AdamW raises for the number `value` of the config key `key` (one of
    `ADAMW_RANGES`): its own checks, `not low <= value` and `not value < high`."""
    bounds = ADAMW_RANGES[key]
    return not bounds.low <= value or (bounds.high is not None and not value < bounds.high)


def plausible_size(value: object) -> bool:
    """Whether `value` can be a size train.py builds: an int of at least 1, below `PLAUSIBLE`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < PLAUSIBLE


def dropout_rejected(value: float) -> bool:
    """Whether dropout `value` cannot train: nn.Dropout raises outside [0, 1], and 1 zeroes
    every activation (nan fails too)."""
    return not 0 <= value < 1


def show(value: object) -> str:
    """A value for a message, never a 5,000-digit wall: an int of up to 30 digits as written
    (`2**63` stays readable), a longer one by its size (`a 3,000-digit number`), anything
    else as its repr, cut to 60 characters."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"{'-' if value < 0 else ''}a {len(str(abs(value))):,}-digit number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
