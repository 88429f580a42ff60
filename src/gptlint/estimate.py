"""Parameter counts for nanoGPT's GPT, computed from the shape alone (no torch)."""

from __future__ import annotations


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


def format_params(count: int) -> str:
    """`76.77M`, `1.56B`: how parameter counts are written in messages."""
    if count >= 10**9:
        return f"{count / 1e9:.2f}B"
    return f"{count / 1e6:.2f}M"
