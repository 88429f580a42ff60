"""nanochat's training step, eager, on fake tensors: the checkout's own model and optimizer.

As `scripts/base_train.py` runs it: the model built on meta (`GPT(config)`), moved to the
device (`to_empty`) and initialised (`init_weights`), `setup_optimizer()`, then
`OPTIMIZER_STEPS` optimizer steps of `min(grad_accum_steps, 2)` micro-steps each
(`loss = model(x, y)`, `(loss / grad_accum_steps).backward()`; from the second micro-step on the
gradients are accumulated), `optimizer.step()` and `model.zero_grad(set_to_none=True)`. The
optimizer's state exists from the first step on, so the second step holds what a long run holds.
float16 runs through a GradScaler, as base_train does. An evaluation step (`training=False`,
base_eval) runs one no-grad forward with `loss_reduction='none'`.

It runs under `StorageTracker.fake_mode()` with `chatstandins` in place (CUDA's rms_norm and
attention, FlashAttention-3 where the target GPU gets it, a fake process group for world > 1,
eager optimizer kernels), the allocations replayed by `ExpandableAllocator`
(base_train sets `PYTORCH_ALLOC_CONF=expandable_segments:True`). Every storage is labelled with
a `CHAT_BREAKDOWN_LABELS` key: parameters, gradients, AdamW or Muon state (by the optimizer group
of its parameter), what the optimizer step allocates besides (its stacks), weight casts (the
16-bit copies nanochat's `Linear` makes), attention (what its kernel saves), the B x T x vocab
logits and loss tensors, the rotary tables (and the `-sin` each layer's rotary product makes),
and activations (everything else, with the two cuBLAS workspaces).

Never the answer for a compiled run: `chatcheck` gives a compiled run the compiled step.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.chatestimate import CHAT_BREAKDOWN_LABELS
from gptlint.runmodel.chatkernels import chat_attention
from gptlint.runmodel.chatrun import ChatStep
from pytest_gptcfg.engine.allocator import CachingAllocator, ExpandableAllocator
from pytest_gptcfg.engine.chatimport import (
    ChatModelError,
    ChatModules,
    checkout_line,
    checkout_modules,
)
from pytest_gptcfg.engine.chatstandins import (
    ChatBehaviour,
    casts_in_place,
    eager_compiled_functions,
    fake_process_group,
    flash_attention_3_in,
)
from pytest_gptcfg.engine.simulate import allocator_result, simulated_note, track_model
from pytest_gptcfg.engine.snapshot import SnapshotRecorder
from pytest_gptcfg.engine.tracker import Allocation, StorageTracker, TrackingFakeMode
from pytest_gptcfg.results import MemoryResult

OPTIMIZER_STEPS = 2
T = TypeVar("T")
_ORDER = (AttentionKernel.MANUAL, AttentionKernel.MATH, AttentionKernel.EFFICIENT)


class ChatTracker(StorageTracker):
    """A `StorageTracker` whose new storages are named by what nanochat's step makes: the
    optimizer step's (`phase` 'optimizer'), B x T x vocab ones (`logits_numels`), the rotary
    product's `-sin` (`rotary_shape`), or activations."""

    def __init__(
        self, allocator: CachingAllocator, logits_numels: set[int], rotary_shape: tuple[int, ...]
    ) -> None:
        super().__init__(allocator, -1)
        self.logits_numels = logits_numels
        self.rotary_shape = rotary_shape
        self.phase = "build"

    def category(self, t: torch.Tensor) -> str:
        if self.phase == "optimizer":
            return "optimizer_step"
        if t.numel() in self.logits_numels:
            return "logits_and_loss"
        if tuple(t.shape) == self.rotary_shape:
            return "rotary"
        return "activations"


def simulate_chat_eager(
    step: ChatStep,
    checkout: Path,
    profile: GpuProfile,
    budget_bytes: int,
    recorder: SnapshotRecorder | None = None,
) -> MemoryResult:
    """The eager step of `step` on `profile`, simulated with the checkout's code at `checkout`,
    judged against `budget_bytes`; `recorder` receives the allocator model's events for a
    memory_viz snapshot. Raises `ChatModelError` where the code cannot be used."""
    attention = chat_attention(step, profile)
    allocator, tracker, behaviour, names = tracking(step, profile, budget_bytes, recorder)
    notes = [simulated_note(profile), "the eager step (no torch.compile)"]
    with (
        checkout_modules(checkout, step.dtype) as modules,
        standins(modules, step, attention.fa3, behaviour, notes) as fa3_missing,
        contextlib.redirect_stdout(io.StringIO()),  # the checkout's print0 lines
    ):
        model = meta_model(modules, step)
        with tracker.fake_mode() as fake, torch.device("cpu"):
            params = fake_model(model, modules, fake, tracker, profile, names)
            if step.training:
                train_checkout(model, modules, step, behaviour, fake, names)
            else:
                checkout_call(
                    partial(_evaluate, model, step, behaviour, tracker), modules, "the forward"
                )
            del model
    if not fa3_missing:
        notes.append(f"attention: {attention.label} ({attention.reason})")
    return chat_result(
        profile,
        budget_bytes,
        allocator,
        tracker.at_peak(),
        step_kernel(behaviour.attention_kernels),
        notes,
        (params, params),
    )


@contextlib.contextmanager
def standins(
    modules: ChatModules,
    step: ChatStep,
    fa3: bool,
    behaviour: ChatBehaviour,
    notes: list[str],
) -> Iterator[bool]:
    """The stand-ins in place; yields whether FlashAttention-3's could not be (`fa3`)."""
    missing = None
    with contextlib.ExitStack() as stack:
        eager = stack.enter_context(eager_compiled_functions(modules))
        if eager:
            functions = ", ".join(name.rsplit(".", 1)[-1] for name in eager)
            notes.append(
                f"the checkout's @torch.compile functions ({functions}) ran eagerly: the "
                "optimizer step's temporaries are the eager ones"
            )
        if step.world_size > 1:
            stack.enter_context(fake_process_group(step.world_size))
            notes.append(f"rank 0 of {step.world_size}: the collectives are not run")
        if fa3:
            missing = stack.enter_context(
                flash_attention_3_in(modules, behaviour.flash_attention_3)
            )
            if missing is not None:
                notes.append(missing)
        yield missing is not None


def meta_model(modules: ChatModules, step: ChatStep) -> torch.nn.Module:
    """`GPT(GPTConfig(...))` on the meta device, as base_train's `build_model_meta`, outside
    the fake mode (a model built inside it cannot be moved with `to_empty`)."""
    s = step.shape
    kwargs = {
        "sequence_len": s.seq_len,
        "vocab_size": s.vocab_size,
        "n_layer": s.depth,
        "n_head": s.n_head,
        "n_kv_head": s.n_kv_head,
        "n_embd": s.model_dim,
        "window_pattern": s.window_pattern,
    }

    def build() -> torch.nn.Module:
        with torch.device("meta"):
            model: torch.nn.Module = modules.gpt.GPT(modules.gpt.GPTConfig(**kwargs))
        return model

    return checkout_call(build, modules, "GPT(GPTConfig(...))")


def tracking(
    step: ChatStep, profile: GpuProfile, budget_bytes: int, recorder: SnapshotRecorder | None
) -> tuple[ExpandableAllocator, ChatTracker, ChatBehaviour, dict[int, str]]:
    """What a simulated nanochat step runs under: the expandable-segments allocator model
    capped at the budget less the CUDA context (its events to `recorder`), the storage tracker
    that labels the B x T x vocab tensors and the rotary slices, the CUDA behaviour, and the
    names of the model's tensors it fills."""
    allocator = ExpandableAllocator(
        limit=max(budget_bytes - profile.context_bytes, 0), recorder=recorder
    )
    shape = step.shape
    numels = {step.tokens * shape.vocab_size, step.tokens * shape.padded_vocab}
    tracker = ChatTracker(allocator, numels, (1, shape.seq_len, 1, shape.head_dim // 2))
    names: dict[int, str] = {}
    return allocator, tracker, ChatBehaviour(profile.compute_capability, tracker, names), names


def fake_model(
    model: torch.nn.Module,
    modules: ChatModules,
    fake: TrackingFakeMode,
    tracker: StorageTracker,
    profile: GpuProfile,
    names: dict[int, str],
) -> int:
    """`model` (built on meta by `meta_model`) given fake storage in `fake` and initialised by
    its own `init_weights()`, as base_train does (`to_empty`, then `init_weights`), its
    parameters and buffers labelled in `tracker` (`names`: their names); its parameter count."""
    to_fake(model, fake)
    with fake.building(), casts_in_place():
        checkout_call(model_method(model, "init_weights"), modules, "init_weights()")
    track_model(tracker, model, profile.compute_capability, names)
    for name, buffer in model.named_buffers():
        tracker.label(buffer, "rotary", f"buffer {name}")
    return sum(p.numel() for p in model.parameters())


def to_fake(model: torch.nn.Module, fake: TrackingFakeMode) -> None:
    """`model.to_empty(device="cpu")` in `fake`: the meta tensors become fake ones."""
    allowed = fake.allow_non_fake_inputs
    fake.allow_non_fake_inputs = True  # the meta parameters are read once, by empty_like
    try:
        model.to_empty(device="cpu")
    finally:
        fake.allow_non_fake_inputs = allowed


def model_method(model: torch.nn.Module, name: str) -> Callable[[], Any]:
    """The checkout's GPT method `name` (chatimport checked that GPT has it)."""
    method: Callable[[], Any] = getattr(model, name)
    return method


def checkout_call(call: Callable[[], T], modules: ChatModules, what: str) -> T:
    """`call()`, an error raised in it as a `ChatModelError` naming `what` raised it and the
    innermost line of the checkout's code it passed through."""
    try:
        return call()
    except ChatModelError:
        raise
    except Exception as error:
        where = checkout_line(error.__traceback__, modules.root)
        error_text = f"{type(error).__name__}: {error}".strip().splitlines()[0][:200]
        raise ChatModelError(f"{where}: {what} raised {error_text}") from error


def train_checkout(
    model: torch.nn.Module,
    modules: ChatModules,
    step: ChatStep,
    behaviour: ChatBehaviour,
    fake: TrackingFakeMode,
    names: dict[int, str],
) -> None:
    """base_train's training of `model`: the checkout's `setup_optimizer()`, then
    `train_steps` with it, each run as the checkout's code (`checkout_call`)."""
    optimizer = checkout_call(model_method(model, "setup_optimizer"), modules, "setup_optimizer()")
    train = partial(train_steps, model, optimizer, step, behaviour, fake, names)
    checkout_call(train, modules, "the training step")


def train_steps(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: ChatStep,
    behaviour: ChatBehaviour,
    fake: TrackingFakeMode,
    names: dict[int, str],
) -> None:
    tracker = fake.tracker
    assert isinstance(tracker, ChatTracker)
    accumulation = max(step.grad_accum_steps, 1)
    scaler = torch.amp.GradScaler("cpu", enabled=step.dtype == "float16")
    x, y = _batch(step)
    for _ in range(OPTIMIZER_STEPS):
        for _ in range(min(accumulation, 2)):
            tracker.phase = "forward"
            with behaviour:
                loss = model(x, y)
            tracker.phase = "backward"
            scaler.scale(loss / accumulation).backward()
            del loss
            x, y = _batch(step)  # base_train fetches the next batch after the backward
            for p in model.parameters():
                if p.grad is not None:
                    tracker.label(p.grad, "gradients", f"grad of {names.get(id(p), 'parameter')}")
        tracker.phase = "optimizer"
        if scaler.is_enabled():
            scaler.unscale_(optimizer)
        with fake.building():  # GradScaler reads found_inf (`.item()`): none found, it steps
            scaler.step(optimizer)
        scaler.update()
        tracker.phase = "idle"
        _label_state(optimizer, tracker, names)
        model.zero_grad(set_to_none=True)


def _evaluate(
    model: torch.nn.Module, step: ChatStep, behaviour: ChatBehaviour, tracker: ChatTracker
) -> None:
    tracker.phase = "forward"
    x, y = _batch(step)
    with torch.no_grad(), behaviour:
        model(x, y, loss_reduction="none")


def _batch(step: ChatStep) -> tuple[torch.Tensor, torch.Tensor]:
    size = (step.device_batch_size, step.shape.seq_len)
    vocab = step.shape.vocab_size
    return torch.randint(0, vocab, size), torch.randint(0, vocab, size)


def _label_state(
    optimizer: torch.optim.Optimizer, tracker: ChatTracker, names: dict[int, str]
) -> None:
    """Name the optimizer's state: Muon's (its groups' `kind` is 'muon') or AdamW's."""
    for group in optimizer.param_groups:
        category = "muon_state" if group.get("kind") == "muon" else "adamw_state"
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor):
                    name = names.get(id(p), "parameter")
                    tracker.label(value, category, f"{key} of {name}")


def step_kernel(used: set[AttentionKernel]) -> AttentionKernel:
    """The attention the step ran, the costliest of its kernels (manual where none ran)."""
    for kernel in _ORDER:
        if kernel in used:
            return kernel
    return AttentionKernel.FLASH if used else AttentionKernel.MANUAL


_ALLOCATOR_NOTE = (
    "allocator: expandable segments, as base_train sets PYTORCH_ALLOC_CONF=expandable_segments:True"
)
"""The note of every simulated nanochat verdict on the allocator model it ran."""


def chat_result(
    profile: GpuProfile,
    budget_bytes: int,
    allocator: CachingAllocator,
    peak: list[Allocation],
    kernel: AttentionKernel,
    notes: list[str],
    params: tuple[int, int],
    compiled: bool = False,
    what: str = "step",
) -> MemoryResult:
    """The verdict of a simulated nanochat step from the allocator model and the allocations
    live at its peak, broken down by `CHAT_BREAKDOWN_LABELS`; `notes` gain the allocator
    model's (`_ALLOCATOR_NOTE`)."""
    notes.append(_ALLOCATOR_NOTE)
    result = allocator_result(
        profile,
        budget_bytes,
        allocator,
        peak,
        profile.context_bytes,
        CHAT_BREAKDOWN_LABELS,
        kernel,
        notes,
        what,
        params,
    )
    result.compiled = compiled
    return result
