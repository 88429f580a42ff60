"""An analytical peak-memory estimate of nanoGPT's training step (no torch).

The estimate follows one step of nanoGPT's `train.py` on CUDA tensor by tensor: what the step
allocates, what autograd keeps alive for the backward pass, and when the peak happens. Every
term is derived in the docstring of the function that computes it. It models the step the
config runs: eager, or with `compile = True` (nanoGPT's default) the compiled step, whose
loss Inductor fuses (`compiled_loss_bytes`); every other term is the same in both.
`pytest --gpt-configs` runs the real step (on CUDA, or on fake tensors, compiled too).

Cross-checks of the tensor bytes (before allocator overhead and CUDA context), bf16 on an
sm89 card: GPT-2 124M at batch 12 x 1024 gives 12.85 GiB here, 12.88 GiB in pytest-gptcfg's
fake-tensor replay of the same step, and about 12.4 GiB in an independent estimate; 12/12/576
at batch 16 x 1024 gives 14.37 GiB here and 14.40 GiB replayed. The allocator overhead is the
least certain term (see ALLOCATOR_OVERHEAD); CUDA measurements should calibrate it.

Agreement with the simulation (`benchmarks/agreement.py`): both take the run from
`gptlint.nanogpt.derive.derive_run` and use the same breakdown keys. The tensors live at the
peak agree within 3% on the configs of `examples/` and `tests/data/` (the estimate leaves out the
two cuBLAS workspaces, 8-32 MiB each, which only tiny configs notice), and within 2.4% on the three
manual-attention configs of `tests/plugin/data/manual_attention` (a model.py with
`self.flash = False`, simulated with that model). The totals cannot agree
that closely: the simulation replays the caching allocator over the step's real allocation
order, and the cached-but-unused memory it finds depends on which freed block each large
request lands in, not on any size a formula sees. For GPT-2 124M (bf16, flash) the replay's
reserved-minus-allocated goes 0.22, 0.58, 1.00, 1.72, 3.30, 1.76 GiB at batch_size 1, 2, 4,
8, 12, 16. A fixed fraction of the tensors is the honest analytical stand-in (15% eager, 8%
for a compiled step, whose replay varies less); where the two differ, the plugin's replay is
the better answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from gptlint.facts.cudablocks import fresh_block_size
from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.trainingrun import StepSpec

FLASH, EFFICIENT, MATH = AttentionKernel.FLASH, AttentionKernel.EFFICIENT, AttentionKernel.MATH
MANUAL = AttentionKernel.MANUAL

ALLOCATOR_OVERHEAD = 0.15
"""Reserved-but-unused memory of PyTorch's caching allocator, as a fraction of the peak tensor
bytes. Requests round up to 512 B and to 2 MiB segments, and a large request can only reuse a
cached free block that is at least as large: the B x T x vocab loss buffers of different sizes
leave holes. pytest-gptcfg's allocator replay of nanoGPT steps gives 4-25% (the most for large
logits); 15% is the middle of that range until CUDA measurements calibrate it."""

COMPILED_ALLOCATOR_OVERHEAD = 0.08
"""The same for the compiled step, whose graphs Inductor plans to reuse its own buffers: the
plugin's replay of the compiled step of the 26 bundled configs that compile (tests/data,
examples) leaves 1-22% of the peak tensor bytes reserved but unused, 6% at the median; at 8%
the estimate's total is within 3% of the replay's for 17 of them (5-8% gives the fewest
misses; GPT-2 124M at batch 1-16 is within 3% at 3 of 6 batches). Calibrate with CUDA
measurements."""

BREAKDOWN_LABELS = {
    "parameters": "parameters",
    "gradients": "gradients",
    "optimizer_state": "AdamW state",
    "weight_copies": "autocast weight copies",
    "activations": "activations",
    "logits_and_loss": "logits and loss",
    "allocator_overhead": "allocator overhead",
    "cuda_context": "CUDA context",
}
"""The categories of a peak, in order, with their labels: the estimate's terms, and the keys
of the plugin's simulated and measured breakdowns, so that the three compare key by key."""


def sdpa_kernel(
    compute_capability: tuple[int, int], half: bool, head_dim: int, dropout: float
) -> AttentionKernel:
    """The kernel `F.scaled_dot_product_attention` picks for training on a GPU of
    `compute_capability`; `half` for 16-bit inputs. The one rule the linter's estimate and the
    plugin's simulation share.

    PyTorch's `select_sdp_backend` (`aten/src/ATen/native/transformers/cuda/sdp_utils.cpp`)
    tries flash, then memory-efficient, then math:

    * flash: sm80 or newer, 16-bit inputs, head_dim <= 256 (since PyTorch 2.1 a head_dim that
      is not a multiple of 8 is padded up to one first); on consumer sm86/sm89 cards its
      backward does not support head_dim in (192, 224], nor head_dim > 224 with dropout.
    * memory-efficient: sm50 or newer, head_dim a multiple of the GEMM alignment (8 for 16-bit
      inputs, 4 for fp32).
    * math: anything else.
    """
    consumer = compute_capability in ((8, 6), (8, 9), (12, 0), (12, 1))
    flash_head = head_dim <= 256 and not (
        consumer and (192 < head_dim <= 224 or (head_dim > 224 and dropout > 0))
    )
    if compute_capability >= (8, 0) and half and flash_head:
        return FLASH
    if compute_capability >= (5, 0) and head_dim % (8 if half else 4) == 0:
        return EFFICIENT
    return MATH


def attention_kernel(gpu: GpuProfile, half: bool, head_dim: int, dropout: float) -> AttentionKernel:
    """The kernel SDPA runs for training on `gpu` (see `sdpa_kernel`)."""
    return sdpa_kernel(gpu.compute_capability, half, head_dim, dropout)


def step_attention(spec: StepSpec, gpu: GpuProfile) -> AttentionKernel:
    """What computes attention in the step of `spec` on `gpu`: the model itself
    (`spec.manual_attention`), else the kernel SDPA picks."""
    if spec.manual_attention:
        return MANUAL
    return attention_kernel(gpu, spec.half, spec.shape.head_dim, spec.shape.dropout)


def attention_scores(spec: StepSpec) -> int:
    """B x H x T x T: the attention matrix of one layer."""
    return spec.batch_size * spec.shape.n_head * spec.block_size**2


def math_attention_bytes(spec: StepSpec) -> int:
    """What the math fallback keeps per layer: `_scaled_dot_product_attention_math` upcasts
    16-bit q, k, v to fp32 (PyTorch >= 2.5) and saves the softmax output, B x H x T x T fp32
    values, for the backward pass; with dropout also the bool mask and the dropped copy."""
    return attention_scores(spec) * (4 + (5 if spec.shape.dropout > 0 else 0))


def manual_attention_bytes(spec: StepSpec) -> int:
    """What nanoGPT's manual attention (`att = q @ k^T * scale; masked_fill; softmax; dropout;
    att @ v`) keeps per layer for the backward pass, per B x H x T x T score under CUDA
    autocast: the scores are made in 16 bit and dropped (the scaling and `masked_fill` save
    nothing of them), `softmax` runs in fp32 (autocast's fp32 list: fp16 scores go through the
    half-to-float kernel, bf16 ones are cast first) and saves its fp32 output (4 B), and
    `att @ v` saves the 16-bit copy autocast makes of it (2 B). With dropout, `native_dropout`
    saves a bool mask (1 B) and `att @ v` the 16-bit copy of the dropped output instead. In
    fp32 the matmul saves the softmax output itself, or the dropped output (4 B) beside it.
    The model's causal-mask buffer (block_size^2 fp32 per layer) is counted in
    `activation_bytes`."""
    dropout = spec.shape.dropout > 0
    matmul_copy = 2 if spec.half else (4 if dropout else 0)
    return attention_scores(spec) * (4 + matmul_copy + (1 if dropout else 0))


def layer_activation_bytes(spec: StepSpec, kernel: AttentionKernel) -> int:
    """Bytes autograd saves for one transformer block (`x + attn(ln_1(x))`,
    `x + mlp(ln_2(x))`), per the ops of nanoGPT's `Block` under CUDA autocast.

    Per token, with C = n_embd, H = n_head, 16-bit autocast and a fused kernel:

    * ln_1 and ln_2 (`layer_norm` runs in fp32) save their input, the fp32 residual stream
      (2 x 4C), and fp32 mean and rstd (2 x 8 B).
    * `c_attn` saves its input cast to 16 bit (2C); its 16-bit output q|k|v (6C) stays alive
      because SDPA saves q, k, v as views of it; SDPA also saves its output (2C, which
      `.transpose(1, 2).contiguous()` leaves in place and attention's `c_proj` saves) and an
      fp32 logsumexp (4H). A head_dim that is not a multiple of 8 is padded for flash: q, k, v
      and the output are then padded copies, plus a 2C contiguous copy of the output.
    * `c_fc` saves its 16-bit input (2C); GELU saves its input, the 16-bit `c_fc` output (8C);
      the MLP's `c_proj` saves the GELU output (8C).
    * dropout > 0: each `native_dropout` saves a bool mask (attention's and the MLP's: 2 x C).

    In fp32 (no autocast) the same tensors are 4 bytes wide and the casts disappear
    (64C in all). The math kernel replaces q|k|v and the output by fp32 copies of q, k, v
    (12C) plus a 2C output copy, and adds `math_attention_bytes` per layer. Manual attention
    saves contiguous copies of q, k and v (the matmuls reshape the transposed heads: 6C)
    and the output (2C), no logsumexp, and adds `manual_attention_bytes` per layer.
    """
    c, h, tokens = spec.shape.n_embd, spec.shape.n_head, spec.tokens
    width = 2 if spec.half else 4
    norms = 2 * (4 * c + 8)
    linear_inputs = 2 * width * c if spec.half else 2 * 4 * c  # c_attn and c_fc inputs
    mlp = 2 * 4 * c * width  # c_fc output (GELU input) and GELU output
    masks = 2 * c if spec.shape.dropout > 0 else 0
    if kernel == MATH:
        attention = 3 * 4 * c + width * c
        per_token = norms + linear_inputs + mlp + masks + attention
        return tokens * per_token + math_attention_bytes(spec)
    if kernel == MANUAL:
        per_token = norms + linear_inputs + mlp + masks + 4 * width * c
        return tokens * per_token + manual_attention_bytes(spec)
    padded = -(-spec.shape.head_dim // 8) * 8 * h if kernel == FLASH else c
    attention = 3 * width * padded + width * padded + 4 * h
    if padded != c:
        attention += width * c
    return tokens * (norms + linear_inputs + mlp + masks + attention)


def activation_bytes(spec: StepSpec, kernel: AttentionKernel) -> int:
    """All blocks' saved tensors plus what lives outside them: ln_f's fp32 input (4C) and
    stats, `lm_head`'s 16-bit input (2C), the embedding dropout mask (C, if dropout), and the
    int64 batches X, Y and the prefetched next X, Y (4 x 8 B per token); with manual attention
    each layer's causal-mask buffer (`torch.tril(torch.ones(block_size, block_size))`)."""
    c, tokens = spec.shape.n_embd, spec.tokens
    outside = 4 * c + 8 + (2 * c if spec.half else 0) + (c if spec.shape.dropout > 0 else 0) + 32
    masks = 4 * spec.shape.block_size**2 * spec.shape.n_layer if kernel == MANUAL else 0
    return spec.shape.n_layer * layer_activation_bytes(spec, kernel) + tokens * outside + masks


def loss_bytes(spec: StepSpec) -> int:
    """The B x T x vocab buffers at their peak, at the start of the backward pass.

    `lm_head` writes 16-bit logits (2 B per element), which stay alive through the backward
    because train.py holds them in `logits`. `F.cross_entropy` is not on autocast's fp32 list:
    it runs `log_softmax` in the logits' dtype (saved, 2 B) and `nll_loss`, which autocast
    runs in fp32, on an fp32 copy (saved, 4 B). The backward of `nll_loss` first allocates its
    fp32 gradient (4 B): 2 + 2 + 4 + 4 = 12 B per element. In fp32 the logits and log-probs are
    4 B each and `log_softmax`'s backward adds a 4 B result to the 4 B incoming gradient:
    16 B per element. A loop that does not keep the logits (`StepSpec.keeps_logits`) frees
    them once the loss is computed (nothing saves them: `log_softmax` saves its output): 2 B
    (4 B in fp32) less.
    """
    kept = held_logits_bytes(spec) // (spec.tokens * spec.shape.vocab_size)
    width = 2 if spec.half else 4
    return spec.tokens * spec.shape.vocab_size * ((12 if spec.half else 16) - width + kept)


def held_logits_bytes(spec: StepSpec) -> int:
    """The logits train.py's loop still references through the backward: all B x T x vocab of
    them in nanoGPT's loop (`logits, loss = model(X, Y)`), none where it drops them
    (`StepSpec.keeps_logits`), eager or compiled."""
    if not spec.keeps_logits:
        return 0
    return spec.tokens * spec.shape.vocab_size * (2 if spec.half else 4)


def compiled_loss_bytes(spec: StepSpec) -> int:
    """The B x T x vocab buffers of the compiled step at its peak, the start of the backward.

    Inductor fuses cross-entropy's forward (log-softmax, gather, mean) and its backward
    (softmax minus one-hot, scaled): neither the log-probabilities nor an fp32 copy of them
    exist, and the forward graph saves only the logits and per-row statistics. What stays is
    the 16-bit logits train.py holds in `logits` (2 B per element); the zero gradient autograd
    materialises for the unused `logits` output of the compiled function (2 B), held until the
    backward graph returns; and the logits' gradient the backward graph writes (2 B), which
    `lm_head`'s two matmuls read while they write the 16-bit weight gradient (vocab x C x 2 B,
    added here; the 16-bit input gradient is B x T x C, small beside it): 6 B per element. In
    fp32 each is 4 B (12 B per element) and the weight gradient is the fp32 one. The saved
    activations are the same as eager (Inductor's partitioner saves what autograd saves, give
    or take a recomputed cast). A loop that drops the logits (`held_logits_bytes`) holds
    4 B per element (8 B in fp32).
    """
    width = 2 if spec.half else 4
    head_grad = spec.shape.vocab_size * spec.shape.n_embd * width
    return spec.tokens * spec.shape.vocab_size * 2 * width + held_logits_bytes(spec) + head_grad


def weight_copy_bytes(spec: StepSpec) -> int:
    """Autocast casts each Linear weight to 16 bit once per forward and caches the copy until
    the autocast region exits; the Linear backward keeps it, so the copies of every matmul
    weight (12 C^2 per layer and the tied wte / lm_head, vocab x C) live through the step."""
    if not spec.half:
        return 0
    s = spec.shape
    return 2 * (12 * s.n_embd**2 * s.n_layer + s.vocab_size * s.n_embd)


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimated peak of one training iteration, term by term (bytes)."""

    spec: StepSpec
    kernel: AttentionKernel
    terms: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.terms.values())

    @property
    def tensors(self) -> int:
        """The tensors live at the peak, without allocator overhead and CUDA context: what
        `torch.cuda.max_memory_allocated` measures."""
        return self.total - self.terms["allocator_overhead"] - self.terms["cuda_context"]

    def breakdown(self) -> str:
        """`parameters 0.29 + gradients 0.29 + ... GiB`."""
        parts = [f"{BREAKDOWN_LABELS[k]} {v / 1024**3:.2f}" for k, v in self.terms.items() if v]
        return " + ".join(parts) + " GiB"


def parameter_copy_bytes(spec: StepSpec) -> int:
    """One fp32 copy of the parameters (the parameters, their gradients, or one of AdamW's
    two moments), each tensor in the block the caching allocator gives it: above 10 MiB a
    tensor takes its 2 MiB-rounded segment whole (`cudablocks.fresh_block_size`), so
    gpt2-xl's copy is 2.1% larger than 4 B per parameter."""
    sizes = spec.shape.parameter_numels()
    return sum(fresh_block_size(4 * n) * count for n, count in sizes.items())


MANUAL_BACKWARD_BYTES = 6
"""Per score, what the backward of a manual-attention block holds beyond its saved tensors:
the fp32 gradient of the softmax output (4 B) and the softmax backward's result (4 B, 2 B for
fp16's half-to-float kernel), less the 16-bit copy `att @ v`'s backward has freed (2 B)."""


def backward_start_terms(
    spec: StepSpec, kernel: AttentionKernel, accumulated: int
) -> dict[str, int]:
    """What lives beside the parameters and AdamW's state at the start of the backward pass:
    every activation saved, the loss buffers at their largest, and the `accumulated`
    gradients (none without gradient accumulation: `zero_grad(set_to_none=True)` frees them
    after each optimizer step, so they exist only from the second micro-step on)."""
    loss = compiled_loss_bytes(spec) if spec.compile else loss_bytes(spec)
    if kernel in (MATH, MANUAL):
        held = 8 if kernel == MATH else MANUAL_BACKWARD_BYTES
        backward = held * attention_scores(spec) + held_logits_bytes(spec)
        loss = max(loss, backward)
    return {
        "gradients": accumulated,
        "weight_copies": weight_copy_bytes(spec),
        "activations": activation_bytes(spec, kernel),
        "logits_and_loss": loss,
    }


def first_block_backward_terms(spec: StepSpec, start: dict[str, int]) -> dict[str, int]:
    """The same inside the backward of the last transformer block (the first block the backward
    reaches), from the `start` of the backward: the loss buffers are gone (but for the logits
    train.py holds, `held_logits_bytes`), every block's activations are still saved, and the MLP's
    backward holds the incoming fp32 gradient of the residual stream (4C per token), its 16-bit copy
    (2C, eager under autocast) and the gradient of the GELU output (4C elements). Where the
    vocabulary is small (character-level models) this is the step's peak."""
    c, width = spec.shape.n_embd, 2 if spec.half else 4
    cast = 2 * c if spec.half and not spec.compile else 0
    return {
        **start,
        "activations": start["activations"] + spec.tokens * (4 * c + cast + 4 * c * width),
        "logits_and_loss": held_logits_bytes(spec),
    }


def backward_end_terms(spec: StepSpec, copy: int, accumulated: int) -> dict[str, int]:
    """The same at the end of the backward pass, when the activations are gone and every gradient of
    the micro-step exists, beside the logits train.py holds (`held_logits_bytes`). Eager, each
    gradient is added into `.grad` and freed as it is made: one copy of gradients. Compiled, the
    backward graph returns all of them at once, beside the `accumulated` `.grad`, while the zero
    gradient of the logits output and the tied head's 16-bit weight copy are still held: with
    gradient accumulation this is the compiled step's peak for large models at small batches
    (gpt2-xl at batch 1)."""
    logits = held_logits_bytes(spec)
    if not spec.compile:
        return {"gradients": copy, "weight_copies": 0, "activations": 0, "logits_and_loss": logits}
    zero_grad = spec.tokens * spec.shape.vocab_size * (2 if spec.half else 4)
    head_copy = 2 * spec.shape.vocab_size * spec.shape.n_embd if spec.half else 0
    return {
        "gradients": accumulated + copy,
        "weight_copies": head_copy,
        "activations": 0,
        "logits_and_loss": zero_grad + logits,
    }


def estimate_memory(spec: StepSpec, gpu: GpuProfile) -> MemoryEstimate:
    """Peak memory of nanoGPT's training step for `spec` on `gpu`.

    The peak comes in the second iteration or later, once AdamW's `exp_avg` and `exp_avg_sq`
    (2 x 4 B per parameter, created by the first step) exist beside the fp32 parameters (4 B).
    Within a micro-step it is at the start of the backward pass (`backward_start_terms`), in
    the backward of the last block where the vocabulary is small
    (`first_block_backward_terms`), or, where the gradients outweigh the activations, at its
    end (`backward_end_terms`). With the math attention kernel the backward of a block can
    peak higher, holding the B x H x T x T gradient and softmax-backward result (2 x 4 B per
    score) while the logits are still alive. On top: the caching allocator's overhead and the
    CUDA context. With `spec.compile` the loss buffers are the compiled step's
    (`compiled_loss_bytes`), its gradients come out of the backward graph together, and the
    allocator's overhead is the compiled step's (`COMPILED_ALLOCATOR_OVERHEAD`).
    """
    kernel = step_attention(spec, gpu)
    copy = parameter_copy_bytes(spec)
    accumulated = copy if spec.gradient_accumulation_steps > 1 else 0
    start = backward_start_terms(spec, kernel, accumulated)
    phase = max(
        start,
        first_block_backward_terms(spec, start),
        backward_end_terms(spec, copy, accumulated),
        key=lambda terms: sum(terms.values()),
    )
    terms = {
        "parameters": copy,
        "gradients": phase["gradients"],
        "optimizer_state": 2 * copy,
        "weight_copies": phase["weight_copies"],
        "activations": phase["activations"],
        "logits_and_loss": phase["logits_and_loss"],
    }
    overhead = COMPILED_ALLOCATOR_OVERHEAD if spec.compile else ALLOCATOR_OVERHEAD
    terms["allocator_overhead"] = int(overhead * sum(terms.values()))
    terms["cuda_context"] = gpu.context_bytes
    return MemoryEstimate(spec, kernel, terms)


def largest_fitting(fits: Callable[[int], bool], limit: int = 4096) -> int:
    """The largest batch_size in 1..`limit` for which `fits` holds (0 if not even 1), for a
    `fits` that holds up to some size and fails above it. Doubles, then bisects: few probes,
    since a probe may run a whole simulated training step."""
    if not fits(1):
        return 0
    good, bad = 1, 2
    while bad <= limit and fits(bad):
        good, bad = bad, bad * 2
    return bisect_fitting(fits, good, min(bad, limit + 1))


def bracket(fitted: dict[int, bool], limit: int) -> tuple[int, int]:
    """The largest batch known to fit (0: none is) and the smallest known not to (`limit` + 1:
    none is), from the batches checked so far and whether each fitted."""
    good = max((batch for batch, fits in fitted.items() if fits), default=0)
    bad = min((batch for batch, fits in fitted.items() if not fits), default=limit + 1)
    return good, bad


def bisect_fitting(fits: Callable[[int], bool], good: int, bad: int) -> int:
    """The largest batch_size that `fits`, between `good` (which fits) and `bad` (which does
    not, or is one past the limit), by bisection."""
    while bad - good > 1:
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


def largest_batch(spec: StepSpec, gpu: GpuProfile, budget: int, limit: int = 4096) -> int:
    """The largest batch_size whose estimate fits `budget` (0 if batch_size 1 does not): what
    `largest_fitting` finds, in about four estimates rather than nine. The estimate rises with
    the batch along straight pieces (one per moment that can hold the peak, bent a little by
    the allocator's rounding), so a line through the two batches nearest where the budget
    runs out points at the answer, and that batch fitting and the next one not fitting
    confirm it. After three lines, bisection between the nearest batches finishes."""
    totals: dict[int, int] = {}

    def fits(batch: int) -> bool:
        if batch not in totals:
            totals[batch] = estimate_memory(dataclasses.replace(spec, batch_size=batch), gpu).total
        return totals[batch] <= budget

    def known() -> tuple[int, int]:
        return bracket({batch: total <= budget for batch, total in totals.items()}, limit)

    if not fits(1):
        return 0
    fits(min(2, limit))
    for _ in range(3):
        good, bad = known()
        if bad - good <= 1:
            return good
        below = sorted(batch for batch in totals if batch <= good)
        low, high = (below[-2], good) if bad > limit else (good, bad)
        rise = (totals[high] - totals[low]) / (high - low)
        guess = bad - 1 if rise <= 0 else good + int((budget - totals[good]) // rise)
        guess = min(max(guess, good), bad - 1)
        if fits(guess) and guess + 1 <= limit:
            fits(guess + 1)
    return bisect_fitting(fits, *known())


def rebatch(
    batch_size: int, accumulation: int, max_batch: int, world_size: int = 1
) -> tuple[int, int] | None:
    """The largest batch_size <= `max_batch` and the gradient_accumulation_steps that keep the
    sequences per iteration (`batch_size * accumulation`) exactly, with the accumulation
    divisible by `world_size` (train.py asserts it under DDP); None if there is none."""
    sequences = batch_size * accumulation
    for batch in range(min(max_batch, sequences), 0, -1):
        if sequences % batch == 0 and (sequences // batch) % world_size == 0:
            return batch, sequences // batch
    return None
