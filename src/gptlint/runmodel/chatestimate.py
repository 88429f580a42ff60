"""An analytical peak-memory estimate of one rank of nanochat's training step (no torch).

The step is `scripts/base_train.py`'s (and chat_sft's): `grad_accum_steps` micro-steps of
`loss = model(x, y); loss.backward()`, then `optimizer.step()` (`MuonAdamW`), then
`model.zero_grad(set_to_none=True)`. The peak is the largest of three moments, each a sum of
named terms (`CHAT_BREAKDOWN_LABELS`):

* the start of a micro-step's backward (`backward start`): everything the forward saved
  (`chatsaved`), the loss buffers at their largest, and the gradients of the earlier
  micro-steps when there are any (`grad_accum_steps > 1`: they exist from the second on);
* the end of the backward (`backward end`): one full set of gradients, two in the compiled
  step with accumulation (the compiled backward returns every gradient at once, beside the
  accumulated `.grad`);
* the optimizer step (`optimizer step`): the gradients and `MuonAdamW`'s stacks
  (`chatparams.optimizer_step_bytes`).

Beside them always: the parameters, AdamW's and Muon's state (`chatparams`), the rotary
tables, the caching allocator's overhead and the CUDA context. The estimate models the step
as `ChatStep.compiled` says; `chat_figures` gives the eager and the compiled figure side by
side. What the compiled figure assumes is stated in `chatsaved`'s docstring: the eager
step's saved tensors less the three Inductor was seen to recompute, with its fused loss.

Cross-checks against the research prototype's eager replay of nanochat's model (README
section 4, peak live tensors, GiB): d20 N=8 B=32 100.0 (here 100.0), B=16 53.1 (53.1), B=8
29.7 (29.7); d20 N=1 B=32 103.0 (103.0); d26 N=8 B=16 80.3 (80.3); the optimizer step at d20
N=8 7.9 (7.9), at d26 N=8 16.0 (16.0). At d20 N=1 the replay's optimizer step is 13.8 and 12.7
here: the replay ran the `@torch.compile` Muon kernel eagerly, with fp32 temporaries of a
whole group (`chatparams.muon_kernel_bytes`). The compiled figure against public reports:
d20 B=32 fits 8 H100s (70.6 of 79.6 GiB), d24 B=32 does not (100.5) and B=16 does (55.5),
speedrun.sh's d26 B=16 fp8 does (56.4) and B=32 fp8 does not (100.6); issue 443's d20 with a
65536 vocabulary at B=32 (an OOM the maintainer could not reproduce) fits with under a tenth
of the card to spare (73.5). `tests/linter/test_nanochat_estimate_figures.py` pins them. The
plugin's simulation of the compiled step (Inductor's plan of nanochat's own model) matches
the compiled tensors within 0.2% at d20 B=32 on 8 H100s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gptlint.facts.cudablocks import LARGE_BUFFER, SMALL_BUFFER
from gptlint.facts.gpus import GpuProfile
from gptlint.runmodel.chatkernels import ChatAttention, Fp8Use, chat_attention, fp8_use
from gptlint.runmodel.chatparams import (
    adamw_state_bytes,
    compute_width,
    gradient_bytes,
    muon_state_bytes,
    optimizer_step_bytes,
    parameter_bytes,
)
from gptlint.runmodel.chatrun import ChatStep
from gptlint.runmodel.chatsaved import (
    INDEX_BYTES,
    compiled_logits_bytes,
    eager_logits_bytes,
    eval_logits_bytes,
    math_backward_bytes,
    rotary_bytes,
    saved_bytes,
    weight_cast_bytes,
)

CHAT_BREAKDOWN_LABELS = {
    "parameters": "parameters",
    "gradients": "gradients",
    "adamw_state": "AdamW state",
    "muon_state": "Muon state",
    "optimizer_step": "optimizer step buffers",
    "weight_casts": "weight casts",
    "activations": "activations",
    "attention": "attention",
    "logits_and_loss": "logits and loss",
    "rotary": "rotary buffers",
    "allocator_overhead": "allocator overhead",
    "cuda_context": "CUDA context",
}
"""The categories of a nanochat peak, in order, with their labels."""

DEVICE_BATCH_LADDER = (32, 16, 8, 4, 2, 1)
"""base_train's `--device-batch-size` help: "good number to reduce to 16,8,4,... if you OOM"
from its default of 32."""

EXPANDABLE_OVERHEAD = 0.02
"""Reserved-but-unused memory of the caching allocator as a fraction of the peak tensors.
base_train sets `PYTORCH_ALLOC_CONF=expandable_segments:True` before importing torch: each
pool is one virtual segment that grows by mapping pages (20 MiB in the large pool,
`cudablocks.LARGE_BUFFER`; 2 MiB in the small one, `SMALL_BUFFER`) and unmaps free pages when
memory runs short, so the holes between differently sized B x T x V buffers that cost nanoGPT
8-15% (`estimate.ALLOCATOR_OVERHEAD`) are given back. What is modelled: the partly used last
page of each pool plus 2% of the tensors for free blocks inside mapped pages. An assumption
until CUDA measurements calibrate it."""


@dataclass(frozen=True)
class ChatEstimate:
    """The estimated peak of one rank's training step, term by term (bytes), at `phase`."""

    step: ChatStep
    attention: ChatAttention
    fp8: Fp8Use
    phase: str
    terms: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.terms.values())

    @property
    def tensors(self) -> int:
        """The tensors live at the peak: what `torch.cuda.max_memory_allocated` measures
        (what base_train prints as `Peak memory usage`)."""
        return self.total - self.terms["allocator_overhead"] - self.terms["cuda_context"]

    def breakdown(self) -> str:
        """`parameters 2.48 + gradients 2.48 + ... GiB`."""
        parts = [
            f"{CHAT_BREAKDOWN_LABELS[k]} {v / 1024**3:.2f}" for k, v in self.terms.items() if v
        ]
        return " + ".join(parts) + " GiB"


def resident_terms(step: ChatStep) -> dict[str, int]:
    """What every moment holds: parameters, optimizer state (created by the first
    `optimizer.step()`, so present from the second iteration on, where the peak is) and the
    rotary tables."""
    return {
        "parameters": parameter_bytes(step),
        "adamw_state": adamw_state_bytes(step) if step.training else 0,
        "muon_state": muon_state_bytes(step) if step.training else 0,
        "rotary": rotary_bytes(step),
    }


def backward_start_terms(step: ChatStep, attention: ChatAttention, fp8: bool) -> dict[str, int]:
    """The start of a micro-step's backward: the forward's saved tensors, the weight casts,
    the loss buffers at their largest (or, where a layer runs SDPA's math kernel and that is
    larger, its backward's B x H x T x T buffers after the loss buffers are freed), and the
    gradients accumulated by the earlier micro-steps."""
    saved = saved_bytes(step, attention, fp8)
    logits = compiled_logits_bytes(step, fp8) if step.compiled else eager_logits_bytes(step)
    accumulated = gradient_bytes(step) if step.grad_accum_steps > 1 else 0
    return {
        "gradients": accumulated,
        "weight_casts": weight_cast_bytes(step, fp8),
        "activations": saved.activations,
        "attention": saved.attention,
        "logits_and_loss": max(logits, math_backward_bytes(step, attention)),
    }


def backward_end_terms(step: ChatStep) -> dict[str, int]:
    """The end of the backward: the saved tensors are freed and the gradients exist. Eager,
    each is added into `.grad` as it is made: one set. Compiled, the backward graph returns
    all of them together, beside the `.grad` of the earlier micro-steps."""
    grads = gradient_bytes(step)
    accumulating = step.compiled and step.grad_accum_steps > 1
    return {"gradients": 2 * grads if accumulating else grads}


def optimizer_terms(step: ChatStep) -> dict[str, int]:
    """`optimizer.step()`: every gradient, and the step's stacks at their largest."""
    return {"gradients": gradient_bytes(step), "optimizer_step": optimizer_step_bytes(step)}


def eval_terms(step: ChatStep) -> dict[str, int]:
    """A no-grad forward (`training=False`, base_eval): the residual stream, x0 and the
    backout copy (3 w-byte d-vectors per token) and the token ids beside the softcapped
    logits at their largest (`eval_logits_bytes`)."""
    width = compute_width(step.dtype)
    stream = step.tokens * (3 * width * step.shape.model_dim + 2 * INDEX_BYTES)
    return {"activations": stream, "logits_and_loss": eval_logits_bytes(step)}


def phases(step: ChatStep, attention: ChatAttention, fp8: bool) -> dict[str, dict[str, int]]:
    """Each moment that can hold the peak, with the terms beside the resident ones."""
    if not step.training:
        return {"forward": eval_terms(step)}
    return {
        "backward start": backward_start_terms(step, attention, fp8),
        "backward end": backward_end_terms(step),
        "optimizer step": optimizer_terms(step),
    }


def allocator_overhead(tensors: int) -> int:
    """`EXPANDABLE_OVERHEAD` of the tensors and the partly used last page of each pool."""
    return int(EXPANDABLE_OVERHEAD * tensors) + LARGE_BUFFER + SMALL_BUFFER


def estimate_chat_memory(step: ChatStep, gpu: GpuProfile) -> ChatEstimate:
    """Peak memory of one rank of `step` on `gpu`: the largest phase's terms beside the
    resident ones, then the allocator's overhead and the GPU's CUDA context. With `--fp8`
    on a card that cannot run it (`Fp8Use.fails`), the run stops at its first forward; the
    figure is then the bf16 step's."""
    attention = chat_attention(step, gpu)
    fp8 = fp8_use(step, gpu)
    resident = resident_terms(step)
    candidates = phases(step, attention, fp8.applies)
    phase = max(candidates, key=lambda name: sum(candidates[name].values()))
    terms = {key: 0 for key in CHAT_BREAKDOWN_LABELS}
    terms.update(resident)
    terms.update(candidates[phase])
    terms["allocator_overhead"] = allocator_overhead(sum(terms.values()))
    terms["cuda_context"] = gpu.context_bytes
    return ChatEstimate(step, attention, fp8, phase, terms)


def chat_figures(step: ChatStep, gpu: GpuProfile) -> dict[str, ChatEstimate]:
    """The eager and the compiled estimate of `step` (its own `compiled` flag aside): the
    eager figure is an upper bound the research replay checks; the compiled one is what a
    base_train run needs, under `chatsaved`'s stated assumption."""
    return {
        mode: estimate_chat_memory(dataclasses.replace(step, compiled=mode == "compiled"), gpu)
        for mode in ("eager", "compiled")
    }


def with_device_batch(step: ChatStep, batch: int) -> ChatStep | None:
    """`step` at `--device-batch-size` `batch`, with the gradient accumulation base_train
    recomputes from the total batch size (`total_batch_size // (B * T * world)`); None where
    base_train's assert rejects it (the total is not a multiple of B x T x world). An
    evaluation (base_eval) has no total to divide: any batch runs, one forward at a time."""
    world_tokens = batch * step.shape.seq_len * step.world_size
    if not step.training:
        return dataclasses.replace(
            step, device_batch_size=batch, total_batch_size=world_tokens, grad_accum_steps=1
        )
    if step.total_batch_size % world_tokens:
        return None
    accum = step.total_batch_size // world_tokens
    return dataclasses.replace(step, device_batch_size=batch, grad_accum_steps=accum)


def largest_device_batch(step: ChatStep, gpu: GpuProfile, budget: int) -> int | None:
    """The largest `--device-batch-size` on nanochat's ladder (32, 16, 8, 4, 2, 1) whose
    estimate fits `budget` bytes and that base_train accepts for the step's total batch
    size; None if none does. A smaller device batch means more micro-steps for the same
    total, so from two micro-steps on the gradients are alive through every backward."""
    for batch in DEVICE_BATCH_LADDER:
        candidate = with_device_batch(step, batch)
        if candidate is not None and estimate_chat_memory(candidate, gpu).total <= budget:
            return batch
    return None
