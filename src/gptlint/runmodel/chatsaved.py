"""What one micro-step of nanochat's training forward keeps for its backward, per rank (no
torch): the activations autograd saves, attention's saved tensors, the bf16 weight casts, the
logits and loss buffers, and the rotary tables.

Derived op by op from `nanochat/gpt.py` (karpathy/nanochat 92d63d4) for the eager step on
CUDA, where autograd saves, per op: `F.rms_norm` (CUDA's `_fused_rms_norm`) its input and an
fp32 rstd per row; `F.linear` its input and the weight it was given (nanochat's `Linear`
passes `self.weight.to(dtype=x.dtype)`, a 16-bit copy of the fp32 master weight); `mul` of
two tensors that need gradients both of them, of a tensor by one that does not only the
other (so the rotary products save only cos and sin), by a Python number nothing; `add`,
`sub`, `cat`, views and `.to()` nothing; `relu` its output; `square` its input;
`sigmoid` and `tanh` their output; `log_softmax` its output; FlashAttention-3 and SDPA's
flash and memory-efficient kernels q, k, v, the output and an fp32 logsumexp.

Checked against the research prototype's eager replay of nanochat's own model
(`/work/shared/research/nanochat/README.md` section 4: a CUDA-like rms_norm, an FA3
stand-in): the eleven peaks it measured (d12 to d26, batch 8 to 32, 1 and 8 ranks) agree
within 0.05 GiB, and so does the per-sequence slope at d20, 2.93 GiB (1.0 GiB of it the four
fp32 B x T x V loss tensors); see tests/linter/test_nanochat_estimate_figures.py.

The compiled step (`torch.compile(model, dynamic=False)`) saves what Inductor's partitioner
keeps, which the source alone does not say. It was read once, by tracing nanochat's own
`gpt.py` (depth 4 and 8, width 256, SDPA in place of FA3) through AOTAutograd with Inductor's
decompositions and partitioner (`min_cut_rematerialization_partition`, torch 2.13, on CPU)
and listing the forward graph's saved outputs: the same tensors as eager, including the
16-bit weight casts and the ReLU^2 MLP's two 4d tensors (the `c_fc` output instead of the
relu output), except three it recomputes in the backward: each layer's mix
`resid_lambdas[i] * x + x0_lambdas[i] * x0` (from the saved block output and x0), the normed
embedding (from `wte`'s output), and all but one of the identical sliding-window masks (one
computation after common-subexpression elimination). This model's compiled figure matches
those traces within 0.1% once a CPU-only tensor is set aside: CPU's SDPA writes its output in
(B, H, T, D) order, so `y.contiguous()` copies it there; on CUDA, FA3 and SDPA's kernels
write (B, T, H, D) and the copy is a no-op.
The logits and loss differ (`compiled_logits_bytes`): the forward saves the 16-bit logits and
two fp32 numbers per row. With `--fp8` (nanochat's `Float8Linear`, traced the same way:
`_Float8Matmul` is `allow_in_graph`, and AOTAutograd traces through it), the compiled step
saves none of the fp8 inputs `_Float8Matmul` declares: it recomputes them in the backward from
the 16-bit tensors it saves anyway, keeping only a few column-major fp8 copies
(`FP8_COPIES_PER_LAYER`); so the Linears' 16-bit inputs it saved for bf16 (the normed x
twice, the ReLU^2 output) go too. The plugin's Inductor plan of the whole step at real shapes
(nanochat's d24 and d26, B=16) showed what those small traces did not: the fp8 weights are kept
(`weight_cast_bytes`), and the fp8 lm_head's backward holds an fp32 and two e5m2 copies of the
logits' gradient (`compiled_logits_bytes`).

nanochat issue 443 is the one public compiled figure: d20, vocabulary 65536, batch 32 on 8
H100s ran out of memory allocating a bf16 (65536, 65536) buffer inside Inductor's wrapper
with 72.48 GiB in use, and the maintainer could not reproduce it: a borderline fit, as here
(see tests/linter/test_nanochat_estimate_figures.py). dev/LOG.md's fp8 entry ("decreases ...
by ~9GB" at d26 B=16, measured with torchao's Float8Linear, before nanochat's own) is close to
what nanochat's Float8Linear saves here at that size (see
tests/linter/test_nanochat_estimate_figures.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.chatkernels import ChatAttention, fp8_linear
from gptlint.runmodel.chatparams import FP32, SMEAR_CHANNELS, VE_GATE_CHANNELS, compute_width
from gptlint.runmodel.chatrun import ChatStep

ROTARY_OVERCOMPUTE = 10
"""`GPT.rotary_seq_len = sequence_len * 10`: the cos and sin tables cover ten contexts."""
FP8_COPIES_PER_LAYER = 1.5
"""fp8 (B*T x d) input copies per layer the compiled fp8 step keeps: the traces of nanochat's
`Float8Linear` model kept six at depth 4 and twelve at depth 8 (widths 256 and 512), each
the column-major copy `_to_col_major(in_fp8)` of a d-wide input; which ones is the
partitioner's min-cut choice, so only their number is modelled."""
INDEX_BYTES = 8
"""`x` and `y`, the int64 token ids of the micro-batch (the embeddings save `idx`)."""


@dataclass(frozen=True)
class Saved:
    """What one micro-step keeps for its backward (bytes): `activations` (the residual
    stream, norms, MLP, embeddings, inputs), `attention` (what its kernels save)."""

    activations: int
    attention: int


def linear_input_bytes(
    step: ChatStep, dims: list[tuple[int, int]], fp8: bool, kept: bool = False
) -> int:
    """Per token, what the Linears of `dims` (in, out) reading one input save of it: the
    16-bit input once if any of them is a plain Linear (or another op keeps it: `kept`);
    eager, also one fp8 copy (1 B per element) per `Float8Linear` (`_Float8Matmul` saves
    `input_fp8`). Compiled, the fp8 copies are recomputed in the backward from the 16-bit
    tensors the step saves anyway (see `FP8_COPIES_PER_LAYER` for the few it keeps)."""
    width = dims[0][0]
    converted = sum(1 for d_in, d_out in dims if fp8 and fp8_linear(d_in, d_out))
    plain = kept or converted < len(dims)
    copies = 0 if step.compiled else converted * width
    return (compute_width(step.dtype) * width if plain else 0) + copies


def layer_activation_bytes(step: ChatStep, layer: int, fp8: bool) -> int:
    """Per token, what one `Block` and the mix before it save, apart from attention's kernel.

    With d = model_dim, kv = n_kv_head * head_dim, w = compute width (2 B, fp32: 4):

    * `resid_lambdas[i] * x + x0_lambdas[i] * x0` saves the incoming residual (the previous
      layer's output, counted there as `x_out`) and x0 (counted once, outside the layers).
    * `norm(x)` saves x_mix (wd; compiled, recomputed) and an fp32 rstd (4 B); the normed x
      is the input of `c_q`, `c_k`, `c_v` (wd, `linear_input_bytes`) and, on value-embedding
      layers, of `ve_gate` through a slice, which keeps it alive even when the three
      projections are fp8 (eager).
    * The rotary products save nothing per token (only cos and sin); the QK-norm saves the
      rotated q and k (wd + w kv) and fp32 rstds per head (4 H + 4 Hkv); `* 1.2` nothing.
    * Value-embedding layers: `gate.unsqueeze(-1) * ve` saves ve (w kv) and the gate, and
      `sigmoid` its output (2 w Hkv); compiled, the gate is recomputed from `ve_gate`'s output
      (w Hkv) and its 12-channel input slice (12 w), saved instead of the normed x.
    * `c_proj` reads attention's output, which attention saves anyway (plus its fp8 copy);
      `x + attn(...)` saves nothing; the MLP's `norm` saves x_mid (wd) and an rstd (4 B); `c_fc`
      its normed input (wd); `relu` its output and `square` the same tensor (4 wd; compiled,
      `c_fc`'s output instead); the MLP's `c_proj` the square (4 wd, or 4d B in fp8).
    * The block's output x_out (wd) is saved by the next layer's `resid_lambdas` product, or
      by the backout product at layer depth // 2; the last layer's output is not saved
      (`x - backout_lambda * x_backout` saves nothing of it) unless it is the backout layer.

    About 19 d-vectors of w bytes per layer, 20 on value-embedding layers (eager, bf16; one
    fewer compiled).
    """
    s = step.shape
    d, kv, w = s.model_dim, s.n_kv_head * s.head_dim, compute_width(step.dtype)
    q = s.n_head * s.head_dim
    has_ve, eager = s.has_value_embed(layer), not step.compiled
    xn = linear_input_bytes(step, [(d, q), (d, kv), (d, kv)], fp8, kept=has_ve and eager)
    mix = w * d if eager else 0  # Inductor recomputes it from x_out and x0
    per_token = mix + FP32 + xn
    per_token += w * (q + kv) + FP32 * (s.n_head + s.n_kv_head)
    if has_ve:
        gate = 2 * s.n_kv_head if eager else VE_GATE_CHANNELS + s.n_kv_head
        per_token += w * kv + w * gate
    if fp8 and fp8_linear(q, d):
        # c_proj's fp8 copy of attention's output; compiled, the copies the traces kept
        per_token += q if eager else int(FP8_COPIES_PER_LAYER * d)
    per_token += w * d + FP32 + linear_input_bytes(step, [(d, 4 * d)], fp8)
    per_token += 4 * w * d + linear_input_bytes(step, [(4 * d, d)], fp8)
    last = layer == s.depth - 1
    if not last or s.depth // 2 == layer:
        per_token += w * d
    return per_token * step.tokens


def outside_activation_bytes(step: ChatStep, fp8: bool) -> int:
    """What `GPT.forward` saves outside the blocks, per token: the token ids x and y
    (2 x 8 B); `wte`'s output (wd, saved by the first `norm`, with its rstd); the normed
    embedding (wd, read by `smear_gate` through a slice and by the smear product; compiled,
    only the 24-channel slice, 24 w); the smear gate and its sigmoid (2w); x0 (wd, saved by
    every layer's `x0_lambdas` product); the final `norm`'s input (wd) and rstd; and
    `lm_head`'s input (wd, or d B in fp8)."""
    s = step.shape
    d, w = s.model_dim, compute_width(step.dtype)
    head = linear_input_bytes(step, [(d, s.padded_vocab)], fp8)
    normed = w * SMEAR_CHANNELS if step.compiled else w * d
    per_token = 2 * INDEX_BYTES + 3 * w * d + normed + 2 * FP32 + 2 * w + head
    return per_token * step.tokens


def scores(step: ChatStep) -> int:
    """B x H x T x T: one layer's attention matrix."""
    return step.device_batch_size * step.shape.n_head * step.shape.seq_len**2


def layer_attention_bytes(step: ChatStep, kernel: AttentionKernel, window: bool) -> int:
    """What one layer's attention kernel saves for its backward.

    FlashAttention-3 and SDPA's flash and memory-efficient kernels save q and k after the
    QK-norm and scaling, v, the output (w per element each: 2 w d + 2 w kv per token) and an
    fp32 logsumexp per head (4 H per token); the window changes their work, not their
    memory. A sliding-window layer under SDPA adds its mask: `scaled_dot_product_attention`
    turns the T x T bool mask into a float bias of the query's dtype, which the
    memory-efficient kernel saves (T^2 w per layer). The math kernel instead saves fp32
    copies of q, k, v (4 B per element) beside the output and its fp32 softmax, B x H x T x
    T x 4 B per layer (as in gptlint's nanoGPT estimate)."""
    s = step.shape
    d, kv, w = s.model_dim, s.n_kv_head * s.head_dim, compute_width(step.dtype)
    if kernel == AttentionKernel.MATH:
        return step.tokens * (FP32 * (d + 2 * kv) + w * d) + FP32 * scores(step)
    per_token = w * (2 * d + 2 * kv) + FP32 * s.n_head
    bias = w * s.seq_len**2 if window else 0
    return per_token * step.tokens + bias


def attention_bytes(step: ChatStep, attention: ChatAttention) -> int:
    """All layers' attention tensors, each layer with its kernel (full or sliding window).
    Eager, every sliding-window layer builds and saves its own mask; compiled, the identical
    masks are one computation, saved once."""
    total, masked = 0, False
    for size in step.shape.window_sizes:
        window = size < step.shape.seq_len
        kernel = attention.window if window and attention.window else attention.full
        bias = window and not attention.fa3 and not (step.compiled and masked)
        masked = masked or bias
        total += layer_attention_bytes(step, kernel, bias)
    return total


def saved_bytes(step: ChatStep, attention: ChatAttention, fp8: bool) -> Saved:
    """Everything the forward saves for the backward."""
    layers = sum(layer_activation_bytes(step, i, fp8) for i in range(step.shape.depth))
    activations = layers + outside_activation_bytes(step, fp8)
    return Saved(activations, attention_bytes(step, attention))


def math_backward_bytes(step: ChatStep, attention: ChatAttention) -> int:
    """Inside a math-kernel layer's backward, the fp32 gradient of the softmax output and the
    softmax backward's result (2 x 4 B per score), as gptlint's nanoGPT estimate has it; 0
    where no layer runs math."""
    kernels = (attention.full, attention.window)
    return 8 * scores(step) if AttentionKernel.MATH in kernels and not attention.fa3 else 0


def linear_weights(step: ChatStep) -> list[tuple[int, int, int]]:
    """(in, out, count) of every nanochat `Linear`: per layer c_q, c_k, c_v, c_proj, c_fc
    and the MLP's c_proj; ve_gate on value-embedding layers; smear_gate; lm_head."""
    s = step.shape
    d, kv, q = s.model_dim, s.n_kv_head * s.head_dim, s.n_head * s.head_dim
    per_layer = [(d, q), (d, kv), (d, kv), (q, d), (d, 4 * d), (4 * d, d)]
    weights = [(d_in, d_out, s.depth) for d_in, d_out in per_layer]
    weights += [(12, s.n_kv_head, len(s.value_embed_layers)), (24, 1, 1), (d, s.padded_vocab, 1)]
    return [weight for weight in weights if weight[2]]


def weight_cast_bytes(step: ChatStep, fp8: bool) -> int:
    """The weights the Linears save for their backward: nanochat's `Linear.forward` passes
    `self.weight.to(dtype=x.dtype)`, a 16-bit copy of the fp32 master weight that `F.linear`
    saves until its backward (2 B per weight, none when COMPUTE_DTYPE is fp32: `.to` returns
    the weight itself); Inductor saves the copy too. An eager `Float8Linear` saves
    `weight_fp8` (1 B) and its fp32 scale instead, and so does the compiled step (the
    plugin's Inductor plan of nanochat's d24 step keeps every fp8 weight to the backward).
    At the start of the backward every Linear's copy is alive."""
    w = compute_width(step.dtype)
    total = 0
    for d_in, d_out, count in linear_weights(step):
        if fp8 and fp8_linear(d_in, d_out):
            total += (d_in * d_out + FP32) * count
        elif w == 2:
            total += 2 * d_in * d_out * count
    return total


def eager_logits_bytes(step: ChatStep) -> int:
    """The B x T x vocab buffers of the eager step at their peak, in `nll_loss`'s backward.

    `lm_head` writes w-byte logits over the padded vocabulary; `[..., :vocab_size]` is a view,
    `.float()` an fp32 copy (the 16-bit logits are freed: `_to_copy` saves nothing);
    `/ softcap` saves nothing; `tanh` saves its fp32 output (4 B); `* softcap` nothing;
    `cross_entropy`'s `log_softmax` saves its fp32 output (4 B). The backward then allocates
    `nll_loss`'s fp32 gradient (4 B) and `log_softmax`'s (4 B) beside them: four fp32
    tensors, 16 B per element of B x T x vocab (the research README's k = 16)."""
    return 16 * step.tokens * step.shape.vocab_size


def compiled_logits_bytes(step: ChatStep, fp8: bool = False) -> int:
    """The same for the compiled step. Inductor fuses the slice, `.float()`, the softcap and
    cross-entropy into reductions over the 16-bit logits (a row max and logsumexp, fp32, 8 B
    per row), which the forward saves with the w-byte logits over the padded vocabulary; the
    backward's first kernel writes their gradient into the logits' own buffer (the plugin's
    Inductor plan of nanochat's step: `buf = reinterpret_tensor(mm, ...); del mm  # reuse`,
    the kernel reading each logit where it writes its gradient), so w bytes per element of
    B x T x padded vocab live at the peak, not two such buffers (the model returns only the
    loss, so no gradient of an unused logits output exists either, unlike nanoGPT). issue
    443's failing allocation is such a bf16 (B*T, V) buffer.

    With `--fp8` the lm_head is a `Float8Linear` (its dimensions qualify), whose backward
    casts the logits' gradient to float8_e5m2: the plan keeps the fp32 gradient the loss's
    backward writes (4 B), and two e5m2 copies of it (a row-major one for the input's
    gradient, a column-major one for the weight's), beside the saved 16-bit logits: 8 B per
    element at the peak (the plan of nanochat's d24 B=16 step: 4 + 2 + 1 + 1 GiB)."""
    w = compute_width(step.dtype)
    per_element = w + (
        4 + 2 if fp8 and fp8_linear(step.shape.model_dim, step.shape.padded_vocab) else 0
    )
    return step.tokens * (per_element * step.shape.padded_vocab + 8)


def eval_logits_bytes(step: ChatStep) -> int:
    """A no-grad forward's largest moment, at the softcap: the fp32 logits, the tanh output
    and the softcapped copy (12 B per element) eager; the w-byte logits and their row
    statistics compiled."""
    if step.compiled:
        return compiled_logits_bytes(step)
    return 12 * step.tokens * step.shape.vocab_size


def rotary_bytes(step: ChatStep) -> int:
    """The `cos` and `sin` buffers, (1, 10 T, 1, head_dim / 2) each in COMPUTE_DTYPE, and the
    `-sin` each layer's two rotary products save (T x head_dim / 2 each) eager; compiled,
    Inductor computes the negation inside the products' kernel and saves the slices of the
    tables instead (views, no memory)."""
    s = step.shape
    w = compute_width(step.dtype)
    tables = 2 * ROTARY_OVERCOMPUTE * s.seq_len * (s.head_dim // 2) * w
    eager = step.training and not step.compiled
    negated = 2 * s.depth * s.seq_len * (s.head_dim // 2) * w if eager else 0
    return tables + negated
