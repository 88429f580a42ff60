"""Which CUDA kernels the target GPU runs, and CPU stand-ins that keep the same tensors alive.

Attention backend choice follows `select_sdp_backend` in
`aten/src/ATen/native/transformers/cuda/sdp_utils.cpp` (priority flash, mem-efficient, math):

- flash: sm80 or newer, q/k/v in fp16/bf16, head_dim <= 256 (a head_dim that is not a multiple
  of 8 is padded up to one by `scaled_dot_product_attention` before the kernel), and on sm86/sm89
  with gradients not head_dim in (192, 224], nor head_dim > 224 with dropout.
- mem-efficient: sm50 and newer, head_dim a multiple of the GEMM alignment (8 for 16-bit inputs,
  4 for fp32).
- math: anything else; it upcasts 16-bit inputs to fp32 and materialises B x H x T x T scores.

Flash and mem-efficient save the output and an fp32 logsumexp and draw dropout from a seed, so the
CPU flash kernel (which saves output + logsumexp) stands in for both; its backward also holds the
fp32 scratch that FlashAttention-2's `mha_bwd` allocates (`softmax_d` B x H x T128 and `dq_accum`
B x T128 x H x D32, T and head_dim rounded up to 128 and 32), which mem-efficient's backward
workspace is taken to match. The math stand-in repeats
`_scaled_dot_product_attention_math`'s ops with `native_dropout`, whose bool mask is what CUDA's
`dropout` keeps (CPU's `dropout` keeps a mask in the input dtype instead).

Softmax and log-softmax of an fp16 CUDA tensor asked for an fp32 result (autocast asks for one)
run the half-to-float kernel (`at::native::softmax` / `log_softmax` in
`aten/src/ATen/native/SoftMax.cpp` call `_softmax(input, dim, half_to_float=true)`): the fp32
result is written directly from the fp16 input, with no fp32 copy of it, and the backward
(`_softmax_backward_data(..., input_dtype=Half)`) returns the fp16 gradient directly. bf16 input
takes the other branch: cast to fp32 first, then softmax.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch.nn import functional as F

from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.estimate import sdpa_kernel


def attention_kernel(
    compute_capability: tuple[int, int], dtype: torch.dtype, head_dim: int, dropout: float
) -> AttentionKernel:
    """The SDPA backend a GPU of `compute_capability` runs for training inputs of `dtype`
    (gptlint's `sdpa_kernel`, so the linter's estimate and the simulation agree)."""
    half = dtype in (torch.float16, torch.bfloat16)
    return sdpa_kernel(compute_capability, half, head_dim, dropout)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class _AttentionContext(Protocol):
    """What `_FusedAttention` keeps on autograd's context from its forward to its backward."""

    is_causal: bool
    scale: float
    saved_tensors: tuple[torch.Tensor, ...]

    def save_for_backward(self, *tensors: torch.Tensor) -> None: ...


class _FusedAttention(torch.autograd.Function):
    """CPU flash attention whose backward also allocates the CUDA kernel's fp32 scratch."""

    @staticmethod
    def forward(
        ctx: _AttentionContext,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        is_causal: bool,
        scale: float,
    ) -> torch.Tensor:
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, is_causal, scale=scale
        )
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.is_causal, ctx.scale = is_causal, scale
        return out

    @staticmethod
    def backward(ctx: _AttentionContext, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, out, lse = ctx.saved_tensors
        batch, heads, seq, head_dim = q.shape
        rows, width = _round_up(seq, 128), _round_up(head_dim, 32) if head_dim <= 192 else 256
        scratch = (
            torch.empty(batch, heads, rows, dtype=torch.float32, device=q.device),
            torch.empty(batch, rows, heads, width, dtype=torch.float32, device=q.device),
        )
        grads = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad_out, q, k, v, out, lse, 0.0, ctx.is_causal, scale=ctx.scale
        )
        del scratch
        return (*grads, None, None)


def fused_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool, scale: float | None
) -> torch.Tensor:
    """Flash / mem-efficient attention: output plus fp32 logsumexp saved, dropout from a seed."""
    head_dim = q.size(-1)
    scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
    pad = -head_dim % 8
    if pad:
        q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
    out = _FusedAttention.apply(q, k, v, is_causal, scale)
    return out[..., :head_dim] if pad else out


def attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """SDPA's additive bias for `attn_mask` (`convert_boolean_attn_mask` in
    `aten/src/ATen/native/transformers/attention.cpp`): a bool mask becomes zeros of the
    query's dtype with -inf where the mask is False; a float mask is the bias itself."""
    if mask.dtype != torch.bool:
        return mask
    return torch.zeros_like(mask, dtype=dtype).masked_fill(mask.logical_not(), float("-inf"))


def aligned_bias(bias: torch.Tensor, alignment: int = 8) -> torch.Tensor:
    """The bias as the memory-efficient kernel is given it (`preprocess_mask`): unless every
    stride but the last is a multiple of `alignment` and the last is 1, padded in its last
    dimension to the next multiple (`pad_bias`) and sliced back, so it spans the padding."""
    strides = bias.stride()
    if strides[-1] == 1 and all(s % alignment == 0 for s in strides[:-1]):
        return bias
    last = bias.size(-1)
    padded = F.pad(bias, (0, alignment - last % alignment))
    return padded[..., :last]


def math_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    is_causal: bool,
    dropout_p: float,
    scale: float | None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The math backend's ops, as `_scaled_dot_product_attention_math` runs them on CUDA
    (with `bias`, an additive mask of the scores' shape or one that broadcasts to it)."""
    dtype = q.dtype
    if dtype in (torch.float16, torch.bfloat16):
        q, k, v = q.float(), k.float(), v.float()
    scale = scale if scale is not None else 1.0 / math.sqrt(q.size(-1))
    root = math.sqrt(scale)
    scores = (q * root) @ (k.transpose(-2, -1) * root)
    if is_causal:
        keep = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool, device=q.device).tril()
        zero = torch.zeros((), dtype=scores.dtype, device=q.device)
        ninf = torch.full((), float("-inf"), dtype=scores.dtype, device=q.device)
        scores = scores + torch.where(keep, zero, ninf)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    attn = torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        attn = torch.native_dropout(attn, dropout_p, True)[0]
    return (attn @ v).to(dtype)


def half_to_float_softmax(
    args: tuple[object, ...], kwargs: dict[str, object], log: bool
) -> torch.Tensor | None:
    """CUDA's half-to-float softmax (or log-softmax) for a `softmax(x, dim, dtype=float32)`
    call on fp16 `x` (the arguments after autocast's policy); None for any other call."""
    x = args[0] if args else kwargs.get("input")
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if len(args) > 2 or not isinstance(x, torch.Tensor) or not isinstance(dim, int):
        return None
    if x.dtype != torch.float16 or kwargs.get("dtype") != torch.float32:
        return None
    op = torch.ops.aten._log_softmax if log else torch.ops.aten._softmax
    return op(x, dim, True)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """CUDA's dropout: identity when off, else `native_dropout` keeping a bool mask."""
    if not training or p == 0.0 or x.numel() == 0:
        return x
    return torch.native_dropout(x, p, True)[0]
