"""CUDA autocast's casting policy, applied by hand to CPU tensors.

CPU autocast casts differently from CUDA autocast (it runs `cross_entropy_loss` in fp32, CUDA
does not), so the simulation never turns on CPU autocast. It applies the CUDA policy itself, at
the `__torch_function__` level, which sits above autograd as the Autocast dispatch key does: the
casts are recorded by autograd and the tensors saved for backward have the dtypes CUDA would save.

The op lists are those of `AT_FORALL_LOWER_PRECISION_FP`, `AT_FORALL_FP32`,
`AT_FORALL_FP32_SET_OPT_DTYPE` and `AT_FORALL_PROMOTE` in `aten/src/ATen/autocast_mode.h`
(registered for `AutocastCUDA` in `aten/src/ATen/autocast_mode.cpp`), with the semantics of
`cached_cast` there: only floating tensors other than float64 are cast, and lower-precision casts
of fp32 leaf tensors that require grad (the weights) are cached until the autocast region exits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

LOWER_PRECISION_FP = frozenset(
    {
        "_convolution", "conv1d", "conv2d", "conv3d", "conv_tbc", "conv_transpose1d",
        "conv_transpose2d", "conv_transpose3d", "convolution", "prelu", "addmm", "addmv", "addr",
        "matmul", "einsum", "mm", "mv", "linalg_vecdot", "linear", "addbmm", "baddbmm", "bmm",
        "chain_matmul", "linalg_multi_dot", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell",
        "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
        "_scaled_dot_product_flash_attention", "scaled_dot_product_attention",
    }
)  # fmt: skip

FP32 = frozenset(
    {
        "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
        "reciprocal", "rsqrt", "sinh", "tan", "pow", "softplus", "layer_norm",
        "native_layer_norm", "group_norm", "frobenius_norm", "nuclear_norm",
        "cosine_similarity", "poisson_nll_loss", "cosine_embedding_loss", "nll_loss",
        "nll_loss2d", "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss",
        "huber_loss", "mse_loss", "margin_ranking_loss", "multilabel_margin_loss",
        "soft_margin_loss", "triplet_margin_loss", "multi_margin_loss",
        "binary_cross_entropy_with_logits", "dist", "pdist", "cdist", "renorm", "logsumexp",
        "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
        "upsample_bilinear2d", "upsample_trilinear3d", "upsample_bicubic2d",
    }
)  # fmt: skip

FP32_SET_OPT_DTYPE = frozenset(
    {
        "prod", "softmax", "log_softmax", "cumprod", "cumsum", "linalg_vector_norm",
        "linalg_matrix_norm", "sum",
    }
)  # fmt: skip

PROMOTE = frozenset(
    {
        "addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "vdot", "grid_sampler",
        "index_put", "tensordot", "scatter_add",
    }
)  # fmt: skip

_OPERATOR_NAMES = {"__matmul__": "matmul", "__rmatmul__": "matmul", "__pow__": "pow",
                   "__rpow__": "pow"}  # fmt: skip


def op_name(func: Callable[..., Any]) -> str:
    """The aten-style name of a function seen by a TorchFunctionMode (`x @ w` -> 'matmul')."""
    name = getattr(func, "__name__", "")
    return _OPERATOR_NAMES.get(name, name)


def _eligible(t: object) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64


class CastCache:
    """Lower-precision copies of weights, reused within one autocast region like CUDA's cache.

    `on_copy(weight, copy)` is told of each copy it makes (the simulation labels them
    `weight_copies` in its memory breakdown).
    """

    def __init__(self, on_copy: Callable[[torch.Tensor, torch.Tensor], None] | None = None) -> None:
        self._casts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._on_copy = on_copy

    def cast(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """`t.to(dtype)`, cached when `t` is an fp32 leaf that requires grad."""
        if t.dtype == dtype:
            return t
        cacheable = t.dtype == torch.float32 and t.requires_grad and t.is_leaf
        if not cacheable:
            return t.to(dtype)
        hit = self._casts.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        copy = t.to(dtype)
        self._casts[id(t)] = (t, copy)
        if self._on_copy is not None:
            self._on_copy(t, copy)
        return copy

    def clear(self) -> None:
        """Drop the cached copies (CUDA clears its cache when the outermost autocast exits)."""
        self._casts.clear()


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def apply_policy(
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    lower: torch.dtype,
    cache: CastCache,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments CUDA autocast would pass on to op `name` with `lower` as its fast dtype."""
    if name in LOWER_PRECISION_FP:
        to_type = lower
    elif name in FP32:
        to_type = torch.float32
    elif name in PROMOTE:
        to_type = lower
        for t in _tensors(args) + _tensors(list(kwargs.values())):
            if _eligible(t):
                to_type = torch.promote_types(to_type, t.dtype)
    elif name in FP32_SET_OPT_DTYPE:
        first = args[0] if args else None
        if _eligible(first) and kwargs.get("dtype") is None:
            kwargs = {**kwargs, "dtype": torch.float32}
        return args, kwargs
    else:
        return args, kwargs

    def cast(t: torch.Tensor) -> torch.Tensor:
        return cache.cast(t, to_type) if _eligible(t) else t

    return _map_tensors(args, cast), {k: _map_tensors(v, cast) for k, v in kwargs.items()}
