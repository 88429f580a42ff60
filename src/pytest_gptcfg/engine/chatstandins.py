"""What the simulation of nanochat's step puts in place of what fake CPU tensors would not run
as CUDA does (the research prototype's shims, /work/shared/research/nanochat/fake_step.py).

- `ChatBehaviour`, a `CudaBehaviour` (no autocast: nanochat casts for itself): `F.rms_norm`
  as CUDA's `_fused_rms_norm` holds it (the input and an fp32 rstd per row saved; CPU's
  decomposition saves an fp32 copy of the input instead), SDPA with the target GPU's kernel
  laid out as CUDA lays it out (`kernels.cuda_fused_attention`; a sliding-window layer's bool
  mask runs mem-efficient with its bias saved, as gptlint's `chatkernels` says), attention's
  saved tensors and the 16-bit weight copies nanochat's `Linear` makes labelled.
- FlashAttention-3 (`flash_attn.flash_attn_func`) where the target GPU gets it (gptlint's
  `chat_attention`): q, k, v, the output and an fp32 logsumexp saved, FA3's fp32 backward
  scratch allocated.
- A process group of `world_size` ranks that does nothing: `torch.distributed`'s
  `is_initialized`, `get_rank` (0), `get_world_size`, `all_reduce`, `reduce_scatter_tensor`,
  `all_gather_into_tensor` (and `broadcast`, `barrier`), the collectives returning a finished
  future, so `MuonAdamW` takes its sharded path in one process.
- The checkout's `@torch.compile` functions (the optimizer's fused kernels) run eagerly: Dynamo
  does not run under a dispatch mode ("non-infra torch dispatch mode present"). Their fp32
  temporaries of a whole group are then the eager figure, not Inductor's.
- `Module.to(dtype)` during `init_weights` casts each floating parameter and buffer in place
  (`.data`): `nn.Module._apply` would swap tensors, which fake parameters refuse ("Cannot swap
  t1 because it has weakref associated with it").

Each patch is undone when the `with` block ends, whatever happens in it.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol
from unittest import mock

import torch
import torch.distributed as dist
from torch.nn import functional as F

from gptlint.facts.kinds import AttentionKernel
from pytest_gptcfg.engine import kernels
from pytest_gptcfg.engine.chatimport import ChatModules
from pytest_gptcfg.engine.policy import op_name
from pytest_gptcfg.engine.simulate import CudaBehaviour
from pytest_gptcfg.engine.torchapi import compiled_original, parse_to
from pytest_gptcfg.engine.tracker import StorageTracker, is_fake

_RMS_NORM = inspect.signature(F.rms_norm)


class ChatBehaviour(CudaBehaviour):
    """nanochat's forward as CUDA runs it (see the module docstring); `names` maps the id of
    each parameter to its name, to label the 16-bit copies `Linear.forward` makes of them."""

    def __init__(
        self,
        compute_capability: tuple[int, int],
        tracker: StorageTracker,
        names: dict[int, str],
    ) -> None:
        super().__init__(None, compute_capability)
        self.tracker = tracker
        self.names = names

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = op_name(func)
        if name == "rms_norm" and args and is_fake(args[0]):
            out = cuda_rms_norm(args, kwargs)
            if out is not None:
                return out
        if name == "to" and args and id(args[0]) in self.names:
            out = func(*args, **kwargs)
            if out is not args[0]:
                dtype = str(out.dtype).removeprefix("torch.")
                weight = self.names[id(args[0])]
                self.tracker.label(out, "weight_casts", f"{dtype} copy of {weight}")
            return out
        return super().__torch_function__(func, types, args, kwargs)

    def fused_attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        kernel: AttentionKernel,
        is_causal: bool,
        scale: float | None,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Flash or mem-efficient attention as CUDA holds it, its saved tensors labelled."""
        if not is_fake(q):
            return super().fused_attention(q, k, v, kernel, is_causal, scale, mask)
        return kernels.cuda_fused_attention(q, k, v, kernel, mask, self.label_attention)

    def flash_attention_3(self, saved: Sequence[torch.Tensor]) -> None:
        """FlashAttention-3's stand-in ran and saved `saved`."""
        self.attention_kernels.add(AttentionKernel.FLASH)
        self.label_attention(saved)

    def label_attention(self, saved: Sequence[torch.Tensor]) -> None:
        """Label what an attention kernel saves for its backward as `attention`."""
        for t in saved:
            shape = "x".join(map(str, t.shape))
            self.tracker.label(t, "attention", f"{str(t.dtype).removeprefix('torch.')} {shape}")


class _Context(Protocol):
    saved_tensors: tuple[torch.Tensor, ...]

    def save_for_backward(self, *tensors: torch.Tensor) -> None: ...


class _CudaRmsNorm(torch.autograd.Function):
    """`_fused_rms_norm` on fake tensors: the output in the input's dtype; the input and an
    fp32 rstd per row saved; the backward's gradient of the input."""

    @staticmethod
    def forward(ctx: _Context, x: torch.Tensor, normalized: int) -> torch.Tensor:
        rows = (*x.shape[: x.dim() - normalized], *(1,) * normalized)
        rstd = x.new_empty(rows, dtype=torch.float32)
        ctx.save_for_backward(x, rstd)
        return torch.empty_like(x)

    @staticmethod
    def backward(ctx: _Context, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, _ = ctx.saved_tensors
        return torch.empty_like(x), None


def cuda_rms_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """`F.rms_norm(x, shape)` of a fake tensor as CUDA holds it; None for a call with a weight
    (nanochat's norm has none), left to CPU's decomposition."""
    bound = _RMS_NORM.bind(*args, **kwargs)
    if bound.arguments.get("weight") is not None:
        return None
    x, shape = bound.arguments["input"], bound.arguments["normalized_shape"]
    normalized = 1 if isinstance(shape, int) else len(shape)
    out: torch.Tensor = _CudaRmsNorm.apply(x, normalized)
    return out


class _FlashAttention3(torch.autograd.Function):
    """FA3's `flash_attn_func` on fake (B, T, H, D) tensors: q, k, v, the output and an fp32
    logsumexp (B, H, T) saved; the backward's fp32 scratch (`softmax_d`, `softmax_lse_log2`,
    `dq_accum`, T rounded up to 128) beside the gradients."""

    @staticmethod
    def forward(
        ctx: _Context,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        on_saved: Callable[[Sequence[torch.Tensor]], None],
    ) -> torch.Tensor:
        batch, seq, heads, _ = q.shape
        out = q.new_empty((batch, seq, heads, v.size(-1)))
        lse = q.new_empty((batch, heads, seq), dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse)
        on_saved((q, k, v, out, lse))
        return out

    @staticmethod
    def backward(ctx: _Context, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v = ctx.saved_tensors[:3]
        batch, seq, heads, head_dim = q.shape
        rows = -(-seq // 128) * 128
        scratch = (
            q.new_empty((batch, heads, rows), dtype=torch.float32),
            q.new_empty((batch, heads, rows, head_dim), dtype=torch.float32),
            q.new_empty((batch, heads, rows), dtype=torch.float32),
        )
        grads = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        del scratch
        return (*grads, None)


def flash_attention_3(
    on_saved: Callable[[Sequence[torch.Tensor]], None],
) -> Callable[..., torch.Tensor]:
    """A `flash_attn_func(q, k, v, causal, window_size)` that runs `_FlashAttention3` (the
    window changes FA3's work, not what it holds)."""

    def flash_attn_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *_: Any, **__: Any):
        out: torch.Tensor = _FlashAttention3.apply(q, k, v, on_saved)
        return out

    return flash_attn_func


class _Done:
    """What a collective of the fake process group returns: its work, already done."""

    def get_future(self) -> _Done:
        return self

    def wait(self, *_: Any, **__: Any) -> bool:
        return True


def _collective(*_: Any, **__: Any) -> _Done:
    return _Done()


@contextlib.contextmanager
def fake_process_group(world_size: int) -> Iterator[None]:
    """`torch.distributed` as rank 0 of `world_size` sees it, every collective a no-op."""

    def rank(*_: Any, **__: Any) -> int:
        return 0

    def size(*_: Any, **__: Any) -> int:
        return world_size

    def yes(*_: Any, **__: Any) -> bool:
        return True

    patches = {
        "is_available": yes,
        "is_initialized": yes,
        "get_rank": rank,
        "get_world_size": size,
        "all_reduce": _collective,
        "reduce_scatter_tensor": _collective,
        "all_gather_into_tensor": _collective,
        "broadcast": _collective,
        "barrier": _collective,
    }
    with contextlib.ExitStack() as stack:
        for name, value in patches.items():
            stack.enter_context(mock.patch.object(dist, name, value))
        yield


@contextlib.contextmanager
def eager_compiled_functions(modules: ChatModules) -> Iterator[list[str]]:
    """The checkout's module-level `@torch.compile` functions replaced by what they wrap;
    yields their names (`nanochat.optim.muon_step_fused`)."""
    names = []
    with contextlib.ExitStack() as stack:
        for module in modules.loaded:
            for name, value in list(vars(module).items()):
                original = compiled_original(value)
                if original is not None:
                    stack.enter_context(mock.patch.object(module, name, original))
                    names.append(f"{module.__name__}.{name}")
        yield names


def _cast_in_place(self: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
    """`Module.to(dtype)` on fake parameters: each floating one recast through `.data`."""
    _, dtype, _, _ = parse_to(*args, **kwargs)
    if dtype is not None:
        for t in itertools.chain(self.parameters(), self.buffers()):
            if t.is_floating_point() and t.dtype != dtype:
                t.data = t.data.to(dtype)
    return self


@contextlib.contextmanager
def casts_in_place() -> Iterator[None]:
    """`Module.to` casting parameters in place (for `init_weights` on fake parameters)."""
    with mock.patch.object(torch.nn.Module, "to", _cast_in_place):
        yield


@contextlib.contextmanager
def flash_attention_3_in(
    modules: ChatModules, on_saved: Callable[[Sequence[torch.Tensor]], None]
) -> Iterator[str | None]:
    """FA3's stand-in as the `flash_attn.flash_attn_func` gpt.py calls; yields None, or why it
    could not be put there (the checkout has no `flash_attn` with a `flash_attn_func`)."""
    namespace = getattr(modules.gpt, "flash_attn", None)
    if namespace is None or not callable(getattr(namespace, "flash_attn_func", None)):
        yield (
            "nanochat/gpt.py has no flash_attn.flash_attn_func to replace with "
            "FlashAttention-3's stand-in: its own attention ran instead"
        )
        return
    with mock.patch.object(namespace, "flash_attn_func", flash_attention_3(on_saved)):
        yield None
