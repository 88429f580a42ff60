"""Which CUDA kernels the target GPU runs, and CPU stand-ins that keep the same tensors alive.

Attention backend choice follows `select_sdp_backend` in
`aten/src/ATen/native/transformers/cuda/sdp_utils.cpp` (priority flash, mem-efficient, math):

- flash: sm80 or newer, q/k/v in fp16/bf16, head_dim <= 256 (a head_dim that is not a multiple
  of 8 is padded up to one by `scaled_dot_product_attention` before the kernel), and on sm86/sm89
  with gradients not head_dim in (192, 224], nor head_dim > 224 with dropout.
- mem-efficient: sm50 and newer, head_dim a multiple of the GEMM alignment (8 for 16-bit inputs,
  4 for fp32).
- math: anything else; it upcasts 16-bit inputs to fp32 and materialises B x H x T x T scores.

A call with an explicit `attn_mask` cannot run flash: mem-efficient takes it where it runs
(gptlint's `masked_sdpa_kernel`), after `scaled_dot_product_attention` turns a bool mask into an
additive bias of the query's dtype (`convert_boolean_attn_mask`: -inf where the mask is False),
which the kernel saves for its backward.

Flash and mem-efficient save the output and an fp32 logsumexp and draw dropout from a seed, so the
CPU flash kernel (which saves output + logsumexp) stands in for both; its backward also holds the
fp32 scratch that FlashAttention-2's `mha_bwd` allocates (`softmax_d` B x H x T128 and `dq_accum`
B x T128 x H x D32, T and head_dim rounded up to 128 and 32), which mem-efficient's backward
workspace is taken to match. `cuda_fused_attention` is a fake-tensor stand-in of the same kernels
that also lays the output out as CUDA's kernels write it (B x T x H x D in memory, so that
`y.transpose(1, 2).contiguous()` copies nothing), with the logsumexp rows each kernel keeps
(T for flash, T rounded up to 32 for mem-efficient) and, for a masked call, the bias.

The math stand-in repeats `_scaled_dot_product_attention_math`'s ops with `native_dropout`, whose
bool mask is what CUDA's `dropout` keeps (CPU's `dropout` keeps a mask in the input dtype
instead).

Softmax and log-softmax of an fp16 CUDA tensor asked for an fp32 result (autocast asks for one)
run the half-to-float kernel (`at::native::softmax` / `log_softmax` in
`aten/src/ATen/native/SoftMax.cpp` call `_softmax(input, dim, half_to_float=true)`): the fp32
result is written directly from the fp16 input, with no fp32 copy of it, and the backward
(`_softmax_backward_data(..., input_dtype=Half)`) returns the fp16 gradient directly. bf16 input
takes the other branch: cast to fp32 first, then softmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch.nn import functional as F

from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.chatkernels import masked_sdpa_kernel
from gptlint.runmodel.estimate import sdpa_kernel

HALF = (torch.float16, torch.bfloat16)


def attention_kernel(
    compute_capability: tuple[int, int], dtype: torch.dtype, head_dim: int, dropout: float
) -> AttentionKernel:
    """The SDPA backend a GPU of `compute_capability` runs for training inputs of `dtype`
    (gptlint's `sdpa_kernel`, so the linter's estimate and the simulation agree)."""
    return sdpa_kernel(compute_capability, dtype in HALF, head_dim, dropout)


def masked_attention_kernel(
    compute_capability: tuple[int, int], dtype: torch.dtype, head_dim: int
) -> AttentionKernel:
    """The SDPA backend for a call with an explicit mask (gptlint's `masked_sdpa_kernel`)."""
    return masked_sdpa_kernel(compute_capability, dtype in HALF, head_dim)


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
        scratch = _backward_scratch(q)
        grads = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad_out, q, k, v, out, lse, 0.0, ctx.is_causal, scale=ctx.scale
        )
        del scratch
        return (*grads, None, None)


def _backward_scratch(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FlashAttention-2's fp32 backward scratch for (B, H, T, D) `q`: `softmax_d` and
    `dq_accum`, T and head_dim rounded up to 128 and 32."""
    batch, heads, seq, head_dim = q.shape
    rows, width = _round_up(seq, 128), _round_up(head_dim, 32) if head_dim <= 192 else 256
    return (
        torch.empty(batch, heads, rows, dtype=torch.float32, device=q.device),
        torch.empty(batch, rows, heads, width, dtype=torch.float32, device=q.device),
    )


SavedCallback = Callable[[Sequence[torch.Tensor]], None]
"""Told of the tensors an attention stand-in saves for its backward (to label them)."""


class _CudaAttentionContext(Protocol):
    saved_tensors: tuple[torch.Tensor, ...]

    def save_for_backward(self, *tensors: torch.Tensor) -> None: ...


class _CudaFusedAttention(torch.autograd.Function):
    """Flash / mem-efficient attention on fake tensors, as CUDA's kernels hold it (no values)."""

    @staticmethod
    def forward(
        ctx: _CudaAttentionContext,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor | None,
        lse_rows: int,
        on_saved: SavedCallback | None,
    ) -> torch.Tensor:
        batch, heads, seq, _ = q.shape
        out = q.new_empty((batch, seq, heads, v.size(-1))).transpose(1, 2)
        lse = q.new_empty((batch, heads, lse_rows), dtype=torch.float32)
        saved = (q, k, v, out, lse) if bias is None else (q, k, v, out, lse, bias)
        ctx.save_for_backward(*saved)
        if on_saved is not None:
            on_saved(saved)
        return out

    @staticmethod
    def backward(
        ctx: _CudaAttentionContext, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        q, k, v = ctx.saved_tensors[:3]
        scratch = _backward_scratch(q)
        grads = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        del scratch
        return (*grads, None, None, None)


def cuda_fused_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel: AttentionKernel,
    mask: torch.Tensor | None,
    on_saved: SavedCallback | None = None,
) -> torch.Tensor:
    """Flash or mem-efficient attention (`kernel`) of fake (B, H, T, D) tensors as CUDA holds
    it: a bool `mask` first becomes the additive bias `scaled_dot_product_attention` makes of
    it, which mem-efficient saves; `on_saved` is told of the saved tensors."""
    bias = None
    if mask is not None:
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
        bias.masked_fill_(mask.logical_not(), float("-inf"))
    seq = q.size(-2)
    rows = seq if kernel == AttentionKernel.FLASH else _round_up(seq, 32)
    out: torch.Tensor = _CudaFusedAttention.apply(q, k, v, bias, rows, on_saved)
    return out


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


def math_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    is_causal: bool,
    dropout_p: float,
    scale: float | None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The math backend's ops, as `_scaled_dot_product_attention_math` runs them on CUDA; a
    bool `mask` is added as the bias `scaled_dot_product_attention` makes of it."""
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
    if mask is not None:
        bias = torch.zeros(mask.shape, dtype=dtype, device=q.device)
        scores = scores + bias.masked_fill_(mask.logical_not(), float("-inf"))
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
