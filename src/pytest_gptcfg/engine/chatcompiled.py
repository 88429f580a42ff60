"""nanochat's training step under `torch.compile(model, dynamic=False)`, simulated: Inductor's
plan of the checkout's own GPT forward and backward, replayed inside base_train's step.

The plan (`compiledstep.plan_for`, as nanoGPT's: graphs captured once with the device batch as a
symbol, planned at each batch, cached) is made from the
checkout's model as base_train builds it: `GPT(config)` on the meta device, `init_weights()`
there (its `.to(COMPUTE_DTYPE)` of the embeddings is what matters to the graphs), under
`--fp8` the checkout's `convert_to_float8_training` with base_train's filter, then moved to
uninitialised CPU memory and captured. Its attention is the target GPU's (gptlint's
`chat_attention`): where the GPU gets FlashAttention-3, the `flash_attn.flash_attn_func`
gpt.py calls is replaced, while Dynamo captures, by `traceable_fa3` (planned as the flash
kernel, which saves what FA3 saves: q, k, v, the output and an fp32 logsumexp); elsewhere the
checkout's own SDPA fallback is captured, full windows with `is_causal=True` and sliding
windows with a bool mask that CUDA's SDPA runs on the memory-efficient kernel (or math) as an
additive bias. F.rms_norm needs nothing of its own: traced on the CPU it gives the plan that
CUDA's `_fused_rms_norm` gives (both decomposed by Inductor, the same tensors saved).

The step around it is `chatstep`'s, on fake tensors: the model built and initialised as there,
its forward replaced by one autograd Function that replays the planned forward graph (its
saved tensors labelled from the graph: attention, weight casts; the B x T x vocab logits by
size), whose backward replays the planned backward; then base_train's micro-steps with the
gradients accumulated, `MuonAdamW.step()` (rank 0 of a fake process group for world > 1),
`zero_grad(set_to_none=True)`, under the expandable-segments allocator model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.nn import functional as F

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.chatkernels import ChatAttention, chat_attention, fp8_linear, fp8_use
from gptlint.runmodel.chatrun import ChatStep
from pytest_gptcfg.engine import compiled, compiledstep
from pytest_gptcfg.engine.chatimport import ChatModules, checkout_modules
from pytest_gptcfg.engine.chatstep import (
    chat_result,
    checkout_call,
    fake_model,
    meta_model,
    model_method,
    standins,
    step_kernel,
    tracking,
    train_checkout,
)
from pytest_gptcfg.engine.compiled import CompiledUnavailable
from pytest_gptcfg.engine.compiledstep import PlannedGraphs, PlanRuntime, graph_inputs
from pytest_gptcfg.engine.simulate import simulated_note
from pytest_gptcfg.engine.snapshot import SnapshotRecorder
from pytest_gptcfg.engine.tracker import StorageTracker
from pytest_gptcfg.results import MemoryResult

__all__ = ["CompiledUnavailable", "simulate_chat_compiled"]

CHAT_TESTED_TORCH = ((2, 13), (2, 14))
"""The torch releases nanochat's compiled plan was checked on (against gptlint's estimate,
`benchmarks/nanochat_table.py`). Others are planned too, with a note: torch 2.8's Inductor plans
the backward of the test checkout's d4 step with a separate fp32 B x T x vocab buffer for the
logits' gradient (2.13 writes it into the 16-bit logits' buffer), a plan the estimate does not
model and no CUDA run has confirmed."""


FP8_MODULE = "nanochat.fp8"
"""The checkout's fp8 module (`convert_to_float8_training`), imported under `--fp8`."""


def traceable_fa3(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    window_size: tuple[int, int] = (-1, -1),
) -> torch.Tensor:
    """FlashAttention-3's `flash_attn_func` on (B, T, H, D) tensors as Dynamo can capture it:
    causal SDPA over (B, H, T, D) views, planned as the flash kernel, which saves what FA3
    saves (q, k, v, the output in (B, T, H, D) order and an fp32 logsumexp per row). The
    window changes FA3's work, not what it holds."""
    y = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
    )
    return y.transpose(1, 2)


def unsupported_reason(step: ChatStep) -> str | None:
    """Why `step`'s compiled step is not simulated (None when it is)."""
    if not step.training:
        return "the compiled step is simulated for training runs only"
    if step.shape.depth > compiledstep.MAX_LAYERS:
        return (
            f"depth {step.shape.depth} > {compiledstep.MAX_LAYERS}: planning it with Inductor "
            "would take too long"
        )
    if step.tokens * step.shape.padded_vocab > compiledstep.MAX_GRAPH_TOKENS_X_VOCAB:
        return "B x T x vocab beyond the compiled simulation's bound"
    return None


def plan_key(
    step: ChatStep, modules: ChatModules, attention: ChatAttention, fp8: bool
) -> dict[str, Any]:
    """What a plan of the checkout's model depends on: the digests of the checkout's modules
    now imported (the model's, and fp8's under `--fp8`), the shape, the micro-batch, the
    dtype, the attention kernels, fp8, torch and the planner's code (not the world size or the
    optimizer: they are outside the graphs)."""
    s = step.shape
    sources = {}
    for module in modules.loaded:
        path = Path(getattr(module, "__file__", None) or "").resolve()
        if path.is_file() and path.is_relative_to(modules.root):
            relative = path.relative_to(modules.root).as_posix()
            sources[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "model": "nanochat",
        "sources": sources,
        "planner": compiled.planner_digest(),
        "torch": torch.__version__,
        "shape": [s.depth, s.model_dim, s.n_head, s.n_kv_head, s.vocab_size, s.window_pattern],
        "batch_size": step.device_batch_size,
        "seq_len": s.seq_len,
        "dtype": step.dtype,
        "kernel": "fa3" if attention.fa3 else [str(attention.full), str(attention.window)],
        "fp8": fp8,
    }


def _target(
    step: ChatStep,
    modules: ChatModules,
    attention: ChatAttention,
    to_float8: Callable[[torch.nn.Module], None] | None,
    batch_size: int,
) -> compiled.Target:
    """The checkout's model, a micro-batch of `batch_size` rows and its loss, as
    `compiled.capture_graphs` captures them."""

    def build() -> torch.nn.Module:
        model = meta_model(modules, step)
        checkout_call(
            model_method(model, "init_weights"), modules, "init_weights() on the meta device"
        )
        if to_float8 is not None:
            to_float8(model)
        return model

    size = (batch_size, step.shape.seq_len)
    batch = (torch.empty(size, dtype=torch.long), torch.empty(size, dtype=torch.long))
    kernel = AttentionKernel.FLASH if attention.fa3 else attention.full
    masked = None if attention.fa3 else attention.window
    return compiled.Target(build, batch, (0,), "the loss", None, kernel, masked, True, True)


def float8_conversion(modules: ChatModules) -> Callable[[torch.nn.Module], None]:
    """base_train's `--fp8`: the checkout's `convert_to_float8_training` on the Linears whose
    dimensions its filter takes (gptlint's `fp8_linear`). Raises `CompiledUnavailable` where
    the checkout has no such module."""
    try:
        fp8 = importlib.import_module(FP8_MODULE)
    except ImportError as error:
        raise CompiledUnavailable(
            f"fp8 not simulated: the checkout's {FP8_MODULE} cannot be imported ({error})"
        ) from None
    convert = getattr(fp8, "convert_to_float8_training", None)
    config = getattr(fp8, "Float8LinearConfig", None)
    if convert is None or config is None:
        raise CompiledUnavailable(
            f"fp8 not simulated: the checkout's {FP8_MODULE} has no convert_to_float8_training "
            "or Float8LinearConfig"
        )

    def linear(module: torch.nn.Module, fqn: str) -> bool:
        if not isinstance(module, torch.nn.Linear):
            return False
        return fp8_linear(module.in_features, module.out_features)

    def to_float8(model: torch.nn.Module) -> None:
        recipe = config.from_recipe_name("tensorwise")
        what = f"{FP8_MODULE}.convert_to_float8_training()"
        checkout_call(lambda: convert(model, config=recipe, module_filter_fn=linear), modules, what)

    return to_float8


def _flash_attn(modules: ChatModules) -> Any:
    """gpt.py's `flash_attn` namespace, None where it has no `flash_attn_func`."""
    namespace = getattr(modules.gpt, "flash_attn", None)
    return namespace if callable(getattr(namespace, "flash_attn_func", None)) else None


def get_plan(
    step: ChatStep, modules: ChatModules, attention: ChatAttention, fp8: bool, notes: list[str]
) -> tuple[dict[str, Any], str]:
    """The plan of the checkout's compiled forward and backward for `step`, and where it came
    from (`compiledstep.plan_for`: the graphs serve every device batch). Where the target GPU
    runs FlashAttention-3, gpt.py's `flash_attn.flash_attn_func` is `traceable_fa3` while the
    model is captured."""
    to_float8 = float8_conversion(modules) if fp8 else None  # imported before the key
    namespace = _flash_attn(modules) if attention.fa3 else None
    if attention.fa3 and namespace is None:
        notes.append(
            "nanochat/gpt.py has no flash_attn.flash_attn_func to plan as FlashAttention-3: "
            "its own attention was planned"
        )
    key = plan_key(step, modules, attention, fp8)
    with contextlib.ExitStack() as stack:
        if namespace is not None:
            stack.enter_context(mock.patch.object(namespace, "flash_attn_func", traceable_fa3))
        return compiledstep.plan_for(
            key,
            step.device_batch_size,
            step.shape.seq_len,
            partial(_target, step, modules, attention, to_float8),
        )


class _ChatRuntime(PlanRuntime):
    """The plan's storages named by what the graph says they are (`plan['saved']`: what
    attention saves, the Linears' 16-bit weight casts), else the B x T x vocab ones by size
    (the logits and their gradient), else activations."""

    def __init__(self, plan: dict[str, Any], tracker: StorageTracker, logits: set[int]) -> None:
        super().__init__(plan, tracker, 0)
        self.logits = logits
        self.saved: dict[str, str] = plan.get("saved", {})

    def category(self, sid: str, nbytes: int, dtype: str) -> str:
        kind = self.saved.get(sid)
        if kind is not None:
            return kind
        itemsize = getattr(getattr(torch, dtype, None), "itemsize", 0)
        if itemsize and nbytes % itemsize == 0 and nbytes // itemsize in self.logits:
            return "logits_and_loss"
        return "activations"


def _planned_forward(model: torch.nn.Module, runtime: PlanRuntime) -> Callable[..., Any]:
    """`model.forward(idx, targets)` as the planned graphs: the loss."""
    inputs = graph_inputs(model, runtime.plan["inputs"])

    def forward(idx: torch.Tensor, targets: torch.Tensor) -> Any:
        loss, *_ = PlannedGraphs.apply(runtime, *inputs((idx, targets)))
        return loss

    return forward


def _kernels(attention: ChatAttention) -> set[AttentionKernel]:
    """The kernels the planned attention runs (FA3 as flash)."""
    if attention.fa3:
        return {AttentionKernel.FLASH}
    return {attention.full} if attention.window is None else {attention.full, attention.window}


def simulate_chat_compiled(
    step: ChatStep,
    checkout: Path,
    profile: GpuProfile,
    budget_bytes: int,
    recorder: SnapshotRecorder | None = None,
) -> MemoryResult:
    """One rank's compiled training step of `step` on `profile`, simulated with the checkout's
    code at `checkout` and judged against `budget_bytes`. Raises `CompiledUnavailable` (why)
    when no plan can be had, `ChatModelError` when the checkout's code cannot be used.
    `recorder` receives the allocator model's events for a memory_viz snapshot."""
    reason = unsupported_reason(step)
    if reason is not None:
        raise CompiledUnavailable(reason)
    attention = chat_attention(step, profile)
    fp8 = fp8_use(step, profile).applies
    allocator, tracker, behaviour, names = tracking(step, profile, budget_bytes, recorder)
    notes = [simulated_note(profile)]
    with (
        checkout_modules(checkout, step.dtype) as modules,
        contextlib.redirect_stdout(io.StringIO()),  # the checkout's print0 lines
    ):
        plan, source = get_plan(step, modules, attention, fp8, notes)
        notes.insert(1, compiledstep.plan_note(plan, source))
        with standins(modules, step, False, behaviour, notes):
            model = meta_model(modules, step)
            with tracker.fake_mode() as fake, torch.device("cpu"):
                params = fake_model(model, modules, fake, tracker, profile, names)
                model.forward = _planned_forward(
                    model, _ChatRuntime(plan, tracker, tracker.logits_numels)
                )
                train_checkout(model, modules, step, behaviour, fake, names)
                del model
    untested = compiled.untested_release(None, CHAT_TESTED_TORCH, "nanochat's compiled simulation")
    if untested is not None:
        notes.append(f"{untested}; its plan passed the checks")
    if fp8:
        notes.append(
            "fp8: the checkout's Float8Linear planned by Inductor's CPU backend (its "
            "_scaled_mm taken to hold what CUDA's does)"
        )
    notes.append(f"attention: {attention.label} ({attention.reason})")
    return chat_result(
        profile,
        budget_bytes,
        allocator,
        tracker.at_peak(),
        step_kernel(_kernels(attention)),
        notes,
        (params, params),
        compiled=True,
    )
