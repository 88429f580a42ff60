"""The model base_train builds (`build_model_meta`) and the asserts and errors its
dimensions meet in nanochat/gpt.py, from the depth, aspect ratio, head dim, sequence length,
window pattern and the tokenizer's vocabulary."""

from __future__ import annotations

from gptlint.runmodel.chatrun import ChatShape
from gptlint.runmodel.trainingrun import Problem

VE_GATE_CHANNELS = 12
"""`CausalSelfAttention.ve_gate_channels`: the ve_gate Linear is (12 -> n_kv_head)."""


MAX_DEPTH = 10_000
"""Layers beyond which a model is not read layer by layer (nanochat's runs use 4 to 32): at
this depth its parameters alone fill thousands of GPUs, and the estimate's work grows with
each layer."""


def build_shape(
    depth: int, aspect_ratio: int, head_dim: int, seq_len: int, window_pattern: str, vocab: int
) -> ChatShape | list[Problem]:
    """base_train's `build_model_meta(depth)`: `model_dim` rounded up to a multiple of
    `head_dim`, `n_head = n_kv_head = model_dim // head_dim`; or what stops it."""
    problems = []
    if depth > MAX_DEPTH:
        problems.append(
            Problem(
                "depth",
                f"--depth={depth}: over {MAX_DEPTH} layers, a model no GPU holds "
                "(gptlint does not model it layer by layer)",
            )
        )
    if depth < 1:
        problems.append(
            Problem(
                "depth",
                f"--depth={depth}: GPT needs a layer "
                "(`window_sizes[-1]` of no layers raises IndexError)",
            )
        )
    if head_dim < 1:
        problems.append(
            Problem(
                "head_dim",
                f"--head-dim={head_dim}: model_dim is rounded up to "
                "a multiple of head_dim, which must be positive",
            )
        )
    elif head_dim % 2:
        problems.append(
            Problem(
                "head_dim",
                f"--head-dim={head_dim}: rotary embeddings split "
                "each head in two halves (`apply_rotary_emb`), so it must be even",
            )
        )
    if aspect_ratio < 1:
        problems.append(
            Problem(
                "aspect_ratio",
                f"--aspect-ratio={aspect_ratio}: model_dim = depth * aspect_ratio must be positive",
            )
        )
    if seq_len < 1:
        problems.append(Problem("max_seq_len", f"--max-seq-len={seq_len} must be positive"))
    pattern = window_pattern.upper()
    if not pattern or any(c not in "SL" for c in pattern):
        problems.append(
            Problem(
                "window_pattern",
                f"Invalid window_pattern: {pattern}. "
                "Use only S and L. (gpt.py `_compute_window_sizes` asserts it)",
            )
        )
    if vocab < 1:
        problems.append(
            Problem("vocab_size", f"the tokenizer's vocab size {vocab} is not positive")
        )
    if problems:
        return problems
    model_dim = -(-depth * aspect_ratio // head_dim) * head_dim
    n_head = model_dim // head_dim
    return ChatShape(depth, model_dim, n_head, n_head, vocab, seq_len, window_pattern)


def scaling_params(shape: ChatShape) -> int:
    """`num_scaling_params()`'s transformer_matrices + lm_head, the count base_train's
    scaling laws use: per block c_q, c_k, c_v, c_proj and the MLP's two (4d x d) matrices,
    plus each value-embedding layer's ve_gate; lm_head is padded_vocab x model_dim."""
    d = shape.model_dim
    q = shape.n_head * shape.head_dim
    kv = shape.n_kv_head * shape.head_dim
    block = q * d + 2 * kv * d + d * d + 8 * d * d
    gates = len(shape.value_embed_layers) * VE_GATE_CHANNELS * shape.n_kv_head
    return shape.depth * block + gates + shape.padded_vocab * d
