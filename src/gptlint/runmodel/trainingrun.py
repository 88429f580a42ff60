"""The run model both front ends produce and the estimate and the plugin consume: a model's
shape, one process's training step, the model's source, the whole run, and the problems that
stop a run from being derived (`Derived`: a result or its problems). Plain data, no torch;
`nanogpt.derive` fills it for nanoGPT.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar


@dataclass(frozen=True)
class ModelShape:
    """The arguments train.py passes to nanoGPT's `GPTConfig`, under its field names."""

    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    vocab_size: int
    bias: bool
    dropout: float = 0.0
    extra: tuple[tuple[str, Any], ...] = ()
    """A fork's further `GPTConfig` arguments (`n_exp`, `top_k` ...), passed to its model."""

    def gptconfig_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `GPTConfig(**model_args)` for this shape."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        extra = dict(fields.pop("extra"))
        return {**fields, **extra}

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def num_params(self, non_embedding: bool = True) -> int:
        """`GPT.get_num_params(non_embedding)`: position embeddings excluded by default."""
        return count_params(
            self.n_layer,
            self.n_embd,
            self.vocab_size,
            self.block_size,
            self.bias,
            non_embedding=non_embedding,
        )

    def parameter_numels(self) -> Counter[int]:
        """The element counts of nanoGPT's `GPT` parameter tensors (wte, tied to lm_head,
        once; wpe; each block's; ln_f), each with how many tensors have it; they sum to
        `num_params(non_embedding=False)`. Counted, not listed: n_layer = 10**9 lists nothing."""
        c = self.n_embd
        norm = [c, c] if self.bias else [c]
        linears = ((3 * c, c), (c, c), (4 * c, c), (c, 4 * c))  # c_attn, c_proj, c_fc, c_proj
        block: list[int] = []
        for i, (rows, cols) in enumerate(linears):
            if i in (0, 2):
                block += norm  # ln_1 before attention, ln_2 before the MLP
            block += [rows * cols, rows] if self.bias else [rows * cols]
        numels = Counter({n: k * self.n_layer for n, k in Counter(block).items()})
        numels.update([self.vocab_size * c, self.block_size * c, *norm])
        return numels


def count_params(
    n_layer: int,
    n_embd: int,
    vocab_size: int,
    block_size: int,
    bias: bool,
    *,
    non_embedding: bool = True,
) -> int:
    """Parameters of nanoGPT's `GPT`, as `GPT.get_num_params(non_embedding)` counts them.

    Per block: ln_1 and ln_2 (weight, plus bias if `bias`), attention `c_attn` (n_embd x 3n_embd)
    and `c_proj` (n_embd x n_embd), MLP `c_fc` (n_embd x 4n_embd) and `c_proj` (4n_embd x n_embd),
    each Linear with a bias vector if `bias`. Then `ln_f`, the token embedding `wte`
    (vocab x n_embd, tied to `lm_head`, so counted once) and the position embedding `wpe`
    (block_size x n_embd), which nanoGPT leaves out by default (`non_embedding=True`).
    The head count does not change the count.
    """
    ln = n_embd * (2 if bias else 1)
    linear_weights = 12 * n_embd * n_embd
    linear_biases = (3 + 1 + 4 + 1) * n_embd if bias else 0
    per_block = 2 * ln + linear_weights + linear_biases
    total = n_layer * per_block + ln + vocab_size * n_embd
    if not non_embedding:
        total += block_size * n_embd
    return total


DEVICE_TYPE = "<device_type>"
"""Where `OptimizerArgs` holds train.py's `device_type`: the check passes its device's kind."""

GPU_DEVICE_TYPE = "cuda"
"""train.py's `device_type` in the run a memory check is about, on an NVIDIA GPU: what the
plugin's step passes for it, and what the linter reads a fork's configure_optimizers with."""


@dataclass(frozen=True)
class OptimizerArgs:
    """What train.py passes to the model's `configure_optimizers`, evaluated for one run
    (`DEVICE_TYPE` for its `device_type`); or, in `unreadable`, why that cannot be told
    statically (naming train.py's line)."""

    positional: tuple[Any, ...] = ()
    keywords: tuple[tuple[str, Any], ...] = ()
    unreadable: str | None = None
    train_mode: bool = False
    """train.py calls its optimizer's `train()` before stepping it (a schedule-free optimizer
    refuses a step otherwise)."""


@dataclass(frozen=True)
class StepSpec:
    """One training micro-step of one process: model shape, batch, precision, optimizer.

    `gradient_accumulation_steps` is per process (train.py divides the config's by the world
    size). `model_factory` builds a project's own model instead of nanoGPT's (the plugin's
    `--gpt-model`), `optimizer_args` call its `configure_optimizers` as train.py does; neither
    is part of the record.
    """

    shape: ModelShape
    batch_size: int
    block_size: int
    gradient_accumulation_steps: int
    dtype: str
    compile: bool
    weight_decay: float = 0.1
    learning_rate: float = 6e-4
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_only: bool = False
    """train.py's `eval_only`: it evaluates (forward passes under `torch.no_grad()` at this
    batch and block size) and exits before the first training step."""
    manual_attention: bool = False
    """The project's model.py computes attention itself (nanoGPT's slow path, `self.flash =
    False`) instead of calling `scaled_dot_product_attention`."""
    keeps_logits: bool = True
    """train.py's micro-step holds the logits through the backward (`logits, loss = model(X,
    Y)`, nanoGPT's); False where it frees them once the loss is computed (`program.Loop`)."""
    model_factory: Callable[[ModelShape], Any] | None = field(default=None, compare=False)
    optimizer_args: OptimizerArgs | None = field(default=None, compare=False)
    """What train.py passes to the model's `configure_optimizers` (None: nanoGPT's arguments);
    not part of the record."""

    @property
    def tokens(self) -> int:
        """Tokens in one micro-batch: batch_size x block_size."""
        return self.batch_size * self.block_size

    @property
    def half(self) -> bool:
        """Whether autocast runs the matmuls in 16 bits."""
        return self.dtype in ("bfloat16", "float16")

    def to_record(self) -> dict[str, Any]:
        """Plain data for a JSON record (a custom `model_factory` and the arguments of a
        project's `configure_optimizers` are not recorded)."""
        unrecorded = ("model_factory", "optimizer_args")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in unrecorded}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StepSpec:
        """The spec `to_record` wrote."""
        fields = dict(record)
        shape = dict(fields.pop("shape"))
        shape["extra"] = tuple((key, value) for key, value in shape.get("extra", ()))
        return cls(shape=ModelShape(**shape), **fields)


@dataclass(frozen=True)
class Problem:
    """Why train.py would not build or run this config (or why it cannot be told statically).

    `unknown` is true when the value exists but is only known by running the config: the user
    can supply it (`--gpt-set KEY=VALUE`). `architecture` is true when the config changes a
    model argument that nanoGPT's `GPTConfig` does not have: gptlint's count and estimate model
    nanoGPT's GPT, so only the fork's own model.py can answer.
    """

    key: str
    message: str
    unknown: bool = False
    architecture: bool = False  # a fork's model beyond nanoGPT's: only its own model.py can tell
    missing: bool = False  # the fork's train.py has no such key: it runs differently

    def __str__(self) -> str:
        return self.message


T = TypeVar("T")


@dataclass(frozen=True)
class Derived(Generic[T]):
    """What a derivation came to: its `value`, or None and the `problems` that stop train.py
    (never both, never neither)."""

    value: T | None
    problems: tuple[Problem, ...] = ()

    def __post_init__(self) -> None:
        if (self.value is None) != bool(self.problems):
            raise ValueError("a derivation has a value or problems, not both or neither")


@dataclass(frozen=True)
class ModelSource:
    """The model train.py builds for a config, and where its shape and vocab come from."""

    shape: ModelShape
    init_from: str
    vocab_from: str
    checkpoint: Path | None = None

    @property
    def model_from(self) -> str:
        """`scratch`, `gpt2-xl preset` or `checkpoint out/ckpt.pt`."""
        if self.checkpoint is not None:
            return f"checkpoint {self.checkpoint}"
        return "scratch" if self.init_from == "scratch" else f"{self.init_from} preset"

    @property
    def whose(self) -> str:
        """`this config's model (12 layers, ...)`, `gpt2-xl's model`, `the checkpoint's model`."""
        if self.init_from == "scratch":
            s = self.shape
            return (
                f"this config's model ({s.n_layer} layers, n_embd {s.n_embd},"
                f" vocab_size {s.vocab_size})"
            )
        if self.checkpoint is not None:
            return f"the model in {self.checkpoint}"
        return f"{self.init_from}'s model"


@dataclass(frozen=True)
class TrainingRun:
    """What train.py runs for a config: the step of one process, and where it came from."""

    spec: StepSpec
    model: ModelSource
    gradient_accumulation_steps: int
    world_size: int
    notes: tuple[str, ...] = ()
    splits_accumulation: bool = True
    rewritten: tuple[str, ...] = ()
    """Keys train.py changes after the configurator (the config's value is not what runs)."""

    @property
    def accumulation_divisor(self) -> int:
        """What the config's gradient_accumulation_steps must stay divisible by: the world size
        where train.py splits it among the processes (nanoGPT), else 1."""
        return self.world_size if self.splits_accumulation else 1

    @property
    def tokens_per_iter(self) -> int:
        """Tokens per optimizer step over all processes (train.py's `tokens_per_iter`)."""
        processes = 1 if self.splits_accumulation else self.world_size
        tokens = self.gradient_accumulation_steps * self.spec.batch_size * self.spec.block_size
        return tokens * processes
