"""The training step of nanoGPT's `train.py`, shared by the CUDA measurement and the simulation.

Per optimizer step: `micro_steps` forward passes under the autocast context, each loss divided
by the config's gradient accumulation and back-propagated through the GradScaler (enabled for
float16 only); then unscale, `clip_grad_norm_`, `scaler.step`, `scaler.update` and
`zero_grad(set_to_none=True)`. As in nanoGPT's `train.py` (`logits, loss = model(X, Y)`), the
logits stay referenced through the backward and the next batch is fetched while they are, so
the previous logits stay alive until the next forward returns; a project whose loop does not keep
them (`StepSpec.keeps_logits`, read from its train.py) drops them once the loss is computed.
Two optimizer steps run, so that at the peak the optimizer state, accumulated gradients
and activations coexist as they do in a long run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import cast

import torch

from gptlint.runmodel.trainingrun import DEVICE_TYPE, StepSpec
from pytest_gptcfg.engine.nanogpt import GPT, adamw
from pytest_gptcfg.engine.usermodel import UserModelError

PTDTYPE = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
OPTIMIZER_STEPS = 2


def resolve_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of the spec's `dtype`, as train.py's `ptdtype` maps it.

    Whether a GPU without bfloat16 runs train.py's default as float16 is decided once, by
    `gptlint.nanogpt.derive.derive_run`; an explicit bfloat16 runs as bfloat16 (newer PyTorch
    emulates it there; gptlint's GPT305 warns about it).
    """
    if dtype not in PTDTYPE:
        raise ValueError(f"dtype must be one of {', '.join(PTDTYPE)}, got {dtype!r}")
    return PTDTYPE[dtype]


def micro_steps(spec: StepSpec) -> int:
    """Micro-steps per optimizer step that the check runs: the config's, at most two."""
    return max(1, min(spec.gradient_accumulation_steps, 2))


def build_model(spec: StepSpec) -> torch.nn.Module:
    """The model of `spec` (built-in nanoGPT unless a factory is given), in training mode."""
    factory = spec.model_factory or GPT
    return factory(spec.shape).train()


def step_module(model: torch.nn.Module, spec: StepSpec) -> torch.nn.Module:
    """What the step calls: `torch.compile(model)` when the config compiles, else `model`.
    Compiling a Module gives an `OptimizedModule`, a Module (torch types it as a callable)."""
    if not spec.compile:
        return model
    return cast(torch.nn.Module, torch.compile(model))


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """The model's parameters as train.py prints them (its own `get_num_params()`, nanoGPT's
    leaving out the position embeddings; all of them where the model has none) and all of them
    (shared tensors once). Counted on the model that ran: a fork's model.py may hold more than
    nanoGPT's shape says (a mixture of experts' experts)."""
    total = sum(p.numel() for p in model.parameters())
    own = getattr(model, "get_num_params", None)
    try:
        reported = own() if callable(own) else total
    except Exception:  # a method of another signature or meaning: all of them
        reported = total
    return (int(reported) if isinstance(reported, int) else total), total


def make_optimizers(
    model: torch.nn.Module, spec: StepSpec, device_type: str
) -> list[torch.optim.Optimizer]:
    """The optimizers train.py steps: the model's own `configure_optimizers`, called with what
    train.py passes it (`spec.optimizer_args`; nanoGPT's arguments where not given), else
    nanoGPT's AdamW groups (`nanogpt.adamw`). One optimizer, or the list it returns (a fork's
    Muon for the matrices and AdamW for the rest, which its train.py steps one after the
    other), each put in train mode where train.py does so (`OptimizerArgs.train_mode`); a
    call train.py's text does not tell is a `UserModelError`."""
    betas = (spec.beta1, spec.beta2)
    configure = getattr(model, "configure_optimizers", None)
    if not callable(configure):
        return [adamw(model, spec.weight_decay, spec.learning_rate, betas, device_type)]
    call = spec.optimizer_args if spec.model_factory is not None else None  # the project's
    if call is None:
        made = configure(spec.weight_decay, spec.learning_rate, betas, device_type)
    elif call.unreadable is not None:
        raise UserModelError(call.unreadable)
    else:
        positional = [_on_device(value, device_type) for value in call.positional]
        keywords = {name: _on_device(value, device_type) for name, value in call.keywords}
        made = configure(*positional, **keywords)
    made = list(made) if isinstance(made, list | tuple) else [made]
    if not made:
        raise UserModelError("the model's configure_optimizers returns no optimizer")
    if call is not None and call.train_mode:  # train.py's `optimizer.train()` (schedule-free)
        for optimizer in made:
            if callable(getattr(optimizer, "train", None)):
                optimizer.train()
    return cast(list[torch.optim.Optimizer], made)


def _on_device(value: object, device_type: str) -> object:
    """`value` with `DEVICE_TYPE` (train.py's `device_type`) replaced by `device_type`."""
    if value == DEVICE_TYPE:
        return device_type
    if isinstance(value, tuple):
        return tuple(_on_device(each, device_type) for each in value)
    return value


class StepObserver:
    """Told where the step is; the simulation uses it to label memory. Does nothing by default."""

    def phase(self, name: str) -> None:
        """Entering phase `name`: 'forward', 'backward', 'optimizer' or 'idle'."""

    def after_backward(self, model: torch.nn.Module) -> None:
        """A backward pass has finished."""

    def after_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """An optimizer step has finished (before `zero_grad`)."""


def run_training(
    model: torch.nn.Module,
    optimizers: Sequence[torch.optim.Optimizer],
    scaler: torch.amp.GradScaler,
    get_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    autocast: Callable[[], AbstractContextManager[object]],
    spec: StepSpec,
    observer: StepObserver | None = None,
) -> None:
    """Run `OPTIMIZER_STEPS` optimizer steps of `micro_steps(spec)` micro-steps each; each of
    `optimizers` (`make_optimizers`) is unscaled, stepped and zeroed in turn."""
    observer = observer or StepObserver()
    accumulation = spec.gradient_accumulation_steps
    X, Y = get_batch()
    logits = loss = None
    for _ in range(OPTIMIZER_STEPS):
        for _ in range(micro_steps(spec)):
            observer.phase("forward")
            with autocast():
                logits, loss = model(X, Y)
                if not spec.keeps_logits:
                    logits = None
                loss = loss / accumulation
            X, Y = get_batch()
            observer.phase("backward")
            scaler.scale(loss).backward()
            observer.after_backward(model)
        observer.phase("optimizer")
        if spec.grad_clip != 0.0:
            for optimizer in optimizers:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()
        for optimizer in optimizers:
            observer.after_optimizer_step(optimizer)
            optimizer.zero_grad(set_to_none=True)
        observer.phase("idle")
    del logits, loss, X, Y


def random_batches(
    spec: StepSpec, device: torch.device | str
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """`get_batch` returning random token ids of shape (batch_size, block_size) on `device`."""

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        size = (spec.batch_size, spec.block_size)
        vocab = spec.shape.vocab_size
        x = torch.randint(0, vocab, size, dtype=torch.long, device=device)
        y = torch.randint(0, vocab, size, dtype=torch.long, device=device)
        return x, y

    return get_batch
