"""Simulation: the CUDA training step run on fake tensors, with no memory and no GPU.

Method
------
The model is built and the step of `trainstep.run_training` is run under `FakeTensorMode` on the
CPU device: tensors carry shapes, dtypes and strides but no data, and autograd, fused AdamW and
GradScaler run as they would (fake CUDA tensors cannot run backward without a GPU). Three layers
make the CPU run keep alive the tensors a CUDA run keeps alive:

1. `CudaBehaviour`, a TorchFunctionMode above autograd, applies CUDA autocast's casting policy
   (`autocast_policy`) instead of CPU autocast, computes `cross_entropy` as CUDA does
   (log_softmax in the logits' dtype, then nll_loss in fp32), runs dropout as CUDA's
   `native_dropout` (bool mask), an fp16 softmax asked for fp32 with CUDA's half-to-float
   kernel (no fp32 copy of its input; real CPU tensors, which cannot run it, cast first), and
   attention with the kernel the target GPU would pick (`kernels`): flash / mem-efficient save
   output + fp32 logsumexp, math keeps B x H x T x T fp32 scores.
2. `StorageTracker` turns storage creation and release into allocations; the step runs in its
   `fake_mode()`, the `FakeTensorMode` that reports each op's outputs to it (one dispatch per
   op instead of a tracking mode stacked above the fake mode: the same ops seen, faster).
3. `CachingAllocator` turns those into reserved memory under a cap of budget - context.

Two cuBLAS workspaces (forward thread and autograd's device thread) are added, and the CUDA
context is the profile's figure (`GpuProfile.context_bytes`, or the `cuda-context` setting).
`fits` is peak reserved + context <= budget, as when measuring.

Known gaps
----------
- This is the eager step. A config that compiles is simulated compiled by `compiledstep`
  (Inductor's plans replayed in this same step), which falls back here with a note.
- Kernel-internal scratch that never becomes a tensor is not seen, except FlashAttention-2's
  backward scratch and the cuBLAS workspaces, which are modelled: embedding-backward sort
  buffers, mem-efficient attention's own workspace and other fused-kernel temporaries are not.
- The CUDA context is modelled, not measured: the profile's figure where one was found for the
  card, else a default; it varies with driver, GPU and CUDA version (`--gpt-cuda-context`).
- Fake tensors hold no values: a forward that reads one (a router's `.item()`, a shape that
  depends on data) cannot be simulated and is explained instead; reads while the model is built
  (an initialisation that samples until no weight is out of range) give zero
  (`TrackingFakeMode.building`).
- An SDPA call with a bool `attn_mask` runs mem-efficient (where CUDA would) on fake tensors;
  a float mask, or a mask on real CPU tensors, runs CPU's kernel, counted as math.
- Only CUDA behaviour reachable from `torch.*` / `F.*` calls is emulated: user models calling
  other composite ops get CPU's decomposition below the call (usually the same memory).
- The caching allocator model assumes default settings (no expandable segments, one stream);
  reserved memory depends on allocation order and is the least certain figure.
- One process, one GPU: DDP's gradient buckets (another fp32 copy of the gradients) and NCCL
  buffers are not included (a run of several processes says so in its notes:
  `derive.ddp_uncounted`); nor is the evaluation pass, which peaks lower than training.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import AttentionKernel, MemoryMode
from gptlint.facts.units import MIB
from gptlint.runmodel.estimate import BREAKDOWN_LABELS, EFFICIENT, FLASH, MANUAL, MATH
from gptlint.runmodel.trainingrun import GPU_DEVICE_TYPE, StepSpec
from pytest_gptcfg.engine import kernels
from pytest_gptcfg.engine.allocator import CachingAllocator
from pytest_gptcfg.engine.policy import CastCache, apply_policy, op_name
from pytest_gptcfg.engine.snapshot import SnapshotRecorder
from pytest_gptcfg.engine.tracker import Allocation, StorageTracker, TrackingFakeMode, is_fake
from pytest_gptcfg.engine.trainstep import (
    StepObserver,
    build_model,
    make_optimizers,
    parameter_counts,
    random_batches,
    resolve_dtype,
    run_training,
)
from pytest_gptcfg.results import MemoryResult, fits_budget

_CROSS_ENTROPY = inspect.signature(F.cross_entropy)
_DROPOUT = inspect.signature(F.dropout)
_SDPA_PARAMS = (
    "query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"
)  # fmt: skip


def cublas_workspace_bytes(compute_capability: tuple[int, int]) -> int:
    """Default cuBLAS workspace PyTorch allocates per handle and stream (32 MiB on sm90/sm100).

    It comes from the caching allocator and cuBLASLt shares it (unified workspace, the default).
    """
    large = compute_capability == (9, 0) or compute_capability[0] == 10
    return 32 * MIB if large else 4096 * 1024 * 2 + 16 * 1024 * 8


class CudaBehaviour(TorchFunctionMode):
    """The forward pass as CUDA runs it: autocast casts and the target GPU's kernels.

    `lower` is autocast's dtype (None when the config trains in float32); `on_weight_copy` is
    told of each 16-bit weight copy autocast caches.
    """

    def __init__(
        self,
        lower: torch.dtype | None,
        compute_capability: tuple[int, int],
        on_weight_copy: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    ) -> None:
        super().__init__()
        self.lower = lower
        self.compute_capability = compute_capability
        self.cache = CastCache(on_weight_copy)
        self.attention_kernels: set[AttentionKernel] = set()

    def __exit__(self, *exc: object) -> None:
        self.cache.clear()
        super().__exit__(*exc)

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = op_name(func)
        if name == "cross_entropy" and self.lower is not None:
            return self._cross_entropy(func, args, kwargs, self.lower)
        if self.lower is not None:
            args, kwargs = apply_policy(name, args, kwargs, self.lower, self.cache)
        if name == "scaled_dot_product_attention":
            return self._attention(func, args, kwargs)
        if name == "softmax" and _over_scores(args[0] if args else None):
            self.attention_kernels.add(MANUAL)
        if name in ("softmax", "log_softmax") and is_fake(args[0] if args else None):
            out = kernels.half_to_float_softmax(args, kwargs, log=name == "log_softmax")
            if out is not None:
                return out
        if name == "dropout" and func is F.dropout:
            bound = _DROPOUT.bind(*args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            if not a["inplace"]:
                return kernels.dropout(a["input"], a["p"], a["training"])
        return func(*args, **kwargs)

    def _cross_entropy(
        self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], lower: torch.dtype
    ) -> Any:
        """CUDA's `cross_entropy_loss` composite under autocast to `lower`: log_softmax in the
        input's dtype (it passes that dtype explicitly, so autocast leaves it), then `nll_loss`
        under the fp32 policy."""
        a = _CROSS_ENTROPY.bind(*args, **kwargs)
        a.apply_defaults()
        x, target = a.arguments["input"], a.arguments["target"]
        plain = (
            a.arguments["label_smoothing"] == 0.0
            and a.arguments["size_average"] is None
            and a.arguments["reduce"] is None
            and not target.is_floating_point()
        )
        if not plain or not x.is_floating_point():
            return func(*args, **kwargs)
        logp = torch.log_softmax(x, 1 if x.dim() > 1 else 0, dtype=x.dtype)
        nll_args, nll_kwargs = apply_policy(
            "nll_loss",
            (logp, target),
            {
                "weight": a.arguments["weight"],
                "ignore_index": a.arguments["ignore_index"],
                "reduction": a.arguments["reduction"],
            },
            lower,
            self.cache,
        )
        return F.nll_loss(*nll_args, **nll_kwargs)

    def _attention(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a = dict(zip(_SDPA_PARAMS, args, strict=False))
        a.update(kwargs)
        q, k, v = a["query"], a["key"], a["value"]
        mask = a.get("attn_mask")
        masked = isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and is_fake(q)
        if a.get("enable_gqa") or (mask is not None and not masked):
            self.attention_kernels.add(MATH)
            return func(*args, **kwargs)
        dropout_p = a.get("dropout_p", 0.0)
        is_causal, scale = a.get("is_causal", False), a.get("scale")
        if masked:
            kernel = kernels.masked_attention_kernel(self.compute_capability, q.dtype, q.size(-1))
        else:
            kernel = kernels.attention_kernel(
                self.compute_capability, q.dtype, q.size(-1), dropout_p
            )
        self.attention_kernels.add(kernel)
        if kernel == MATH:
            return kernels.math_attention(q, k, v, is_causal, dropout_p, scale, mask)
        return self.fused_attention(q, k, v, kernel, is_causal, scale, mask)

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
        """Flash or mem-efficient attention (`kernel`): with a bool `mask` (fake tensors), the
        stand-in that saves the bias CUDA makes of it; without, the CPU flash kernel."""
        if mask is not None:
            return kernels.cuda_fused_attention(q, k, v, kernel, mask)
        return kernels.fused_attention(q, k, v, is_causal, scale)


def _over_scores(t: object) -> bool:
    """Whether a softmax input looks like attention scores, B x H x T x T (the model computes
    attention itself, as nanoGPT's `self.flash = False` path does)."""
    return isinstance(t, torch.Tensor) and t.dim() >= 3 and t.size(-1) == t.size(-2) > 1


def copy_labeller(
    tracker: StorageTracker, names: dict[int, str]
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The `CudaBehaviour` callback that labels an autocast weight copy in `tracker`, named
    after its weight (`names`: id of a parameter → its name, filled by `track_model`)."""

    def weight_copy(weight: torch.Tensor, copy: torch.Tensor) -> None:
        name = names.get(id(weight), "weight")
        dtype_name = str(copy.dtype).removeprefix("torch.")
        tracker.label(copy, "weight_copies", f"{dtype_name} autocast copy of {name}")

    return weight_copy


def build_fake_model(
    fake: TrackingFakeMode, spec: StepSpec
) -> tuple[torch.nn.Module, tuple[int, int]]:
    """The model of `spec` built in `fake` (reads of its initial weights give zero:
    `TrackingFakeMode.building`), and its `parameter_counts`."""
    with fake.building():
        model = build_model(spec)
    return model, parameter_counts(model)


def track_model(
    tracker: StorageTracker,
    model: torch.nn.Module,
    compute_capability: tuple[int, int],
    names: dict[int, str],
    handles: int = 2,
) -> None:
    """Label `model`'s parameters in `tracker` (and record their names in `names`), and add
    the cuBLAS workspace of each handle that runs a matmul: the forward's thread and, where a
    backward runs, autograd's device thread."""
    for n, p in model.named_parameters():
        names[id(p)] = n
        tracker.label(p, "parameters", f"parameter {n}")
    workspace = cublas_workspace_bytes(compute_capability)
    for i in range(handles):
        tracker.add(-1 - i, Allocation(workspace, "activations", "cuBLAS workspace"))


class _Labeller(StepObserver):
    """Names parameters, gradients and optimizer state in the tracker as the step runs."""

    def __init__(self, tracker: StorageTracker, names: dict[int, str]) -> None:
        self.tracker = tracker
        self.names = names

    def after_backward(self, model: torch.nn.Module) -> None:
        for p in model.parameters():
            if p.grad is not None:
                name = self.names.get(id(p), "parameter")
                self.tracker.label(p.grad, "gradients", f"grad of {name}")

    def after_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        for p, state in optimizer.state.items():
            name = self.names.get(id(p), "parameter")
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    self.tracker.label(value, "optimizer_state", f"{key} of {name}")


def simulate(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    recorder: SnapshotRecorder | None = None,
    upper_bound: bool = False,
) -> MemoryResult:
    """Simulate the step of `spec` on `profile` and judge it against `budget_bytes`; a
    `recorder` receives the allocator model's events for a memory_viz snapshot. With
    `upper_bound`, the eager step stands for a run that compiles (`allocator_result`)."""
    context = profile.context_bytes
    notes = [simulated_note(profile)]
    dtype = resolve_dtype(spec.dtype)
    lower = None if dtype == torch.float32 else dtype
    allocator = CachingAllocator(limit=max(budget_bytes - context, 0), recorder=recorder)
    logits_numel = spec.batch_size * spec.block_size * spec.shape.vocab_size
    tracker = StorageTracker(allocator, logits_numel)
    names: dict[int, str] = {}
    behaviour = CudaBehaviour(lower, profile.compute_capability, copy_labeller(tracker, names))
    with tracker.fake_mode() as fake, torch.device("cpu"):
        model, params = build_fake_model(fake, spec)
        track_model(tracker, model, profile.compute_capability, names)
        optimizers = make_optimizers(model, spec, GPU_DEVICE_TYPE)
        scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
        run_training(
            model,
            optimizers,
            scaler,
            random_batches(spec, "cpu"),
            lambda: behaviour,
            spec,
            _Labeller(tracker, names),
        )
        del model, optimizers, scaler
    if dtype == torch.float16:
        notes.append("float16: GradScaler enabled, as train.py does")
    peak = tracker.at_peak()
    return simulated_result(
        spec,
        profile,
        budget_bytes,
        allocator,
        peak,
        context,
        behaviour.attention_kernels,
        notes,
        params=params,
        upper_bound=upper_bound,
    )


def simulated_note(profile: GpuProfile) -> str:
    """The note every simulated verdict starts with: no GPU, and the CUDA context counted."""
    return (
        "simulated on fake tensors (no GPU used); the CUDA context is a modelled "
        f"{profile.context_bytes // MIB} MiB ({profile.context_source})"
    )


def simulated_result(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    allocator: CachingAllocator,
    peak: list[Allocation],
    context: int,
    used_kernels: set[AttentionKernel],
    notes: list[str],
    what: str = "step",
    params: tuple[int, int] | None = None,
    upper_bound: bool = False,
) -> MemoryResult:
    """The verdict of a simulated run (the eager or compiled step, or the evaluation: `what`)
    from the allocator model and the allocations live at its peak; `params`, the model's
    `parameter_counts`; `upper_bound` as `allocator_result`'s."""
    kernel = _kernel_name(used_kernels)
    if kernel == MANUAL:
        notes.append(
            "the model computes attention itself (manual attention, no SDPA kernel): it keeps "
            "B x H x T x T scores per layer"
        )
    if kernel == MATH:
        head_dim = spec.shape.n_embd // spec.shape.n_head
        notes.append(
            f"attention falls back to the math kernel on {profile.label} (head_dim {head_dim}): "
            "it materialises B x H x T x T scores per layer"
        )
    return allocator_result(
        profile,
        budget_bytes,
        allocator,
        peak,
        context,
        BREAKDOWN_LABELS,
        kernel,
        notes,
        what,
        params,
        upper_bound,
    )


def allocator_result(
    profile: GpuProfile,
    budget_bytes: int,
    allocator: CachingAllocator,
    peak: list[Allocation],
    context: int,
    labels: dict[str, str],
    kernel: AttentionKernel,
    notes: list[str],
    what: str = "step",
    params: tuple[int, int] | None = None,
    upper_bound: bool = False,
) -> MemoryResult:
    """A simulated verdict (nanoGPT's or nanochat's) from the allocator model and the
    allocations live at its peak, broken down by `labels`' keys (each allocation's category)
    with the allocator's overhead and the CUDA context `context`; `fits` as when measuring.
    With `upper_bound`, the run simulated was an eager stand-in for one that compiles
    (torch.compile frees what eager keeps): labelled so, and a cap it met is not said to be
    the compiled run's out-of-memory."""
    breakdown = dict.fromkeys(labels, 0)
    for allocation in peak:
        breakdown[allocation.category] += allocation.size
    breakdown["allocator_overhead"] = allocator.peak_reserved - allocator.peak_allocated
    breakdown["cuda_context"] = context
    if allocator.oom and upper_bound:
        notes.append(f"the {what} exceeds the memory cap eager (the compiled run holds less)")
    elif allocator.oom:
        notes.append(f"the {what} exceeds the memory cap: a real run raises CUDA out of memory")
    return MemoryResult(
        mode=MemoryMode.SIMULATED,
        fits=fits_budget(allocator.peak_reserved, context, budget_bytes) and not allocator.oom,
        peak_allocated_bytes=allocator.peak_allocated,
        peak_reserved_bytes=allocator.peak_reserved,
        context_bytes=context,
        budget_bytes=budget_bytes,
        breakdown=breakdown,
        largest_tensors=[(a.description, a.size) for a in peak[:10]],
        oom=allocator.oom,
        torch_version=torch.__version__,
        device_name=f"{profile.label} (simulated)",
        attention_kernel=kernel,
        notes=notes,
        params=params,
        upper_bound=upper_bound,
    )


def _kernel_name(used: set[AttentionKernel]) -> AttentionKernel:
    """The attention the step ran: SDPA's kernel, or MANUAL where the model computes scores
    itself, with softmax or anything else (no SDPA call was seen)."""
    for kernel in (MANUAL, MATH, EFFICIENT, FLASH):
        if kernel in used:
            return kernel
    return MANUAL
