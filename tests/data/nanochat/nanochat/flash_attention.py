"""Test data: a nanochat-like flash_attention.py. `flash_attn.flash_attn_func(q, k, v, causal,
window_size)` on (B, T, H, D) tensors: FlashAttention-3 from the `kernels` hub when CUDA is
available and the compute dtype is bf16, else SDPA (is_causal for a full window, an explicit
bool mask for a sliding one)."""

from types import SimpleNamespace

import torch
import torch.nn.functional as F


def _load_fa3():
    if not torch.cuda.is_available():
        return None
    try:
        from kernels import get_kernel
    except ImportError:
        return None
    return get_kernel("kernels-community/flash-attn3").flash_attn_interface


_fa3 = _load_fa3()


def _use_fa3():
    from nanochat.common import COMPUTE_DTYPE

    return _fa3 is not None and COMPUTE_DTYPE == torch.bfloat16


USE_FA3 = _use_fa3()


def _sdpa(q, k, v, window):
    T = q.size(2)
    if window < 0 or window >= T:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    rows = torch.arange(T, device=q.device).unsqueeze(1)
    cols = torch.arange(T, device=q.device).unsqueeze(0)
    mask = (cols <= rows) & (rows - cols <= window)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def flash_attn_func(q, k, v, causal=False, window_size=(-1, -1)):
    """Causal attention over (B, T, H, D) tensors, `window_size[0]` tokens to the left."""
    if USE_FA3:
        return _fa3.flash_attn_func(q, k, v, causal=causal, window_size=window_size)
    y = _sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), window_size[0])
    return y.transpose(1, 2)


flash_attn = SimpleNamespace(flash_attn_func=flash_attn_func)
