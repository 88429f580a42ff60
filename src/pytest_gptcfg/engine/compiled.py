"""Inductor's memory plan of a model's compiled forward and backward graphs, found on the CPU:
captured once (`capture_graphs`, with the batch size as a symbol where it can be) and planned
at each batch size from that (`plan_at`). A `Target` says how the model is built and called:
nanoGPT's (or a project's model of its interface) by `nanogpt_target`, nanochat's by
`chatcompiled`.

Dynamo, AOTAutograd and Inductor (PyTorch's private APIs) are reached through `torchapi`, the
one module that names them; everything else sees only plain data: the captured graphs and
the plans `plan_at` makes of them. No torch release is refused by its version: each is
planned, and what was read is checked (`plan_at`); a plan that fails a check raises
`CompiledUnavailable`,
and the plugin then reports gptlint's estimate of the compiled step, labelled as such.
`TESTED_TORCH` names the releases this was run on (`benchmarks/torch_matrix.py`).

Method, as `torch.compile(model)` does it on CUDA, but stopped before anything runs:

1. Dynamo captures `model(*batch)` (forward and loss) with a capturing backend, `fullgraph=True`:
   a graph break is reported, not simulated. The model is built on the meta device and moved
   to uninitialised CPU memory (never touched), so no weights are materialised.
2. AOTAutograd traces the joint forward-backward graph on fake CPU tensors with Inductor's
   decomposition table and min-cut partitioner, under the simulation's `CudaBehaviour`
   (CUDA's autocast casts, CUDA's cross-entropy), with attention as the CUDA op the target
   GPU runs (`_scaled_dot_product_flash_attention` / `_efficient_attention`, or the math
   kernel's ops; a mask as the additive bias CUDA's SDPA makes of it).
3. Inductor lowers, fuses and plans each graph with its CPU (C++) backend, and stops after the
   wrapper code is generated (nothing is compiled). The wrapper's `call()` is then run on
   stand-in buffers (`wrappercall`): Python's reference counting frees each buffer when the
   wrapper's last name of it goes, as it does on the GPU; where the batch is a symbol, its
   sizes are the batch's (`plan_at`). The CPU backend's plan stands in for
   the Triton backend's (the research prototype found the same peaks within 0.01 GiB);
   kernel-internal scratch (FlashAttention's backward accumulators, cuBLAS workspaces) is not
   in the plan.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

import torch

from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.estimate import FLASH, MATH
from gptlint.runmodel.trainingrun import StepSpec
from pytest_gptcfg.engine import forked, framestack, kernels, torchapi
from pytest_gptcfg.engine.simulate import _SDPA_PARAMS, CudaBehaviour
from pytest_gptcfg.engine.wrappercall import (
    Buffer,
    Storage,
    TensorMeta,
    WrapperRun,
    WrapperUnreadable,
    run_call,
    storage_bytes,
)

TESTED_TORCH = ((2, 5), (2, 14))
"""Oldest and newest (major, minor) torch releases the compiled simulation was run and checked
on. Others are planned too; their result carries a note that says so."""


@functools.cache
def planner_digest() -> str:
    """The digest of the code that makes and reads plans (every module of this package: the
    model, the behaviour the graphs are traced under, the wrapper's reader): part of every
    cache key, so a cached plan is used only by the code that made it."""
    folder = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class CompiledUnavailable(Exception):
    """The compiled step cannot be simulated here; the message says why (it becomes a note)."""


class OutsideGuards(CompiledUnavailable):
    """Graphs captured with a symbolic batch do not hold at the batch asked: what they assume
    of it (a guard) is false there, so that batch needs a capture of its own."""


def torch_release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a torch version string, None if it has none."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def untested_release(
    version: str | None = None,
    tested: tuple[tuple[int, int], tuple[int, int]] | None = None,
    what: str = "the compiled simulation",
) -> str | None:
    """`torch X is outside the releases the compiled simulation was checked on (A to B)` for a
    torch release (this one by default) outside `tested` (by default `TESTED_TORCH`, nanoGPT's,
    read when called); None inside it."""
    version = version or str(torch.__version__)
    tested = tested or TESTED_TORCH
    found = torch_release(version)
    if found is not None and tested[0] <= found <= tested[1]:
        return None
    low, high = (".".join(map(str, v)) for v in tested)
    return f"torch {version} is outside the releases {what} was checked on ({low} to {high})"


# --------------------------------------------------------------------------- capture


class _CompiledBehaviour(CudaBehaviour):
    """`CudaBehaviour` with attention as the CUDA op the graph holds under torch.compile:
    `kernel` for attention without a mask; `masked` for attention with one (None: refused)."""

    def __init__(
        self,
        lower: torch.dtype | None,
        kernel: AttentionKernel,
        masked: AttentionKernel | None = None,
    ) -> None:
        super().__init__(lower, (9, 0))
        self.kernel = kernel
        self.masked = masked

    def _attention(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a = dict(zip(_SDPA_PARAMS, args, strict=False))
        a.update(kwargs)
        mask = a.get("attn_mask")
        if a.get("enable_gqa") or (mask is not None and self.masked is None):
            raise CompiledUnavailable("attention with a mask or GQA is not simulated compiled")
        q, k, v = a["query"], a["key"], a["value"]
        is_causal, scale = a.get("is_causal", False), a.get("scale")
        dropout_p = a.get("dropout_p", 0.0)
        kernel = self.kernel if mask is None else self.masked
        assert kernel is not None
        if mask is not None and (mask.dtype != torch.bool or kernel == FLASH):
            raise CompiledUnavailable(f"attention with a {mask.dtype} mask is not simulated")
        self.attention_kernels.add(kernel)
        if kernel == MATH:
            return kernels.math_attention(q, k, v, is_causal, dropout_p, scale, mask)
        head_dim = q.size(-1)
        scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
        pad = -head_dim % 8
        if pad:
            q, k, v = (torch.nn.functional.pad(t, (0, pad)) for t in (q, k, v))
        if kernel == FLASH:
            out = torch.ops.aten._scaled_dot_product_flash_attention(
                q, k, v, dropout_p, is_causal, False, scale=scale
            )[0]
        else:
            bias = None if mask is None else _efficient_bias(mask, q, k)
            out = torch.ops.aten._scaled_dot_product_efficient_attention(
                q, k, v, bias, True, dropout_p, is_causal, scale=scale
            )[0]
        return out[..., :head_dim] if pad else out


def _efficient_bias(mask: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """A bool mask as CUDA's `scaled_dot_product_attention` hands it to the memory-efficient
    kernel (`aten/src/ATen/native/transformers/attention.cpp`): an additive bias of the
    query's dtype, -inf where the mask is False (`convert_boolean_attn_mask`); padded in its
    last dimension to a multiple of 8 and sliced back unless its strides are aligned
    (`preprocess_mask`, `pad_bias`); expanded to B x H x T x S (a view)."""
    bias = torch.zeros_like(mask, dtype=q.dtype).masked_fill(mask.logical_not(), float("-inf"))
    strides = bias.stride()
    if strides[-1] != 1 or any(s % _BIAS_ALIGNMENT for s in strides[:-1]):
        last = bias.size(-1)
        bias = torch.nn.functional.pad(bias, (0, _BIAS_ALIGNMENT - last % _BIAS_ALIGNMENT))
        bias = bias[..., :last]
    return bias.expand(q.size(0), q.size(1), q.size(2), k.size(2))


_BIAS_ALIGNMENT = 8
"""`preprocess_mask`'s `mem_eff_alignment`."""


class _UnderPolicy(torch.nn.Module):
    """Dynamo's graph, run (traced) under the CUDA behaviour."""

    def __init__(self, gm: torch.nn.Module, target: Target):
        super().__init__()
        self.gm = gm
        self.target = target

    def forward(self, *args: Any) -> Any:
        t = self.target
        with _CompiledBehaviour(t.lower, t.kernel, t.masked):
            return self.gm(*args)


class _Captured(Exception):
    pass


Size = int | str
"""A size, stride or offset in a captured graph: a number, or an expression in the batch's
symbols (`256*s24`) where the batch was traced as a symbol."""


@dataclass
class _Graph:
    """One graph as Inductor planned it: its wrapper code, and its inputs and outputs as the
    FX graph declares them (a tensor's metadata with `Size`s, or a size's expression)."""

    wrapper: str = ""
    placeholder_names: list[str] = field(default_factory=list)
    placeholders: list[list[Any] | Size] = field(default_factory=list)
    output_meta: list[list[Any] | Size | None] = field(default_factory=list)
    output_nodes: list[Any] = field(default_factory=list)
    placeholder_nodes: list[Any] = field(default_factory=list)

    def as_data(self) -> dict[str, Any]:
        """What the plan at any batch needs of this graph (JSON-ready; the wrapper's kernels'
        source left out)."""
        return {
            "wrapper": without_kernel_sources(self.wrapper),
            "names": self.placeholder_names,
            "inputs": self.placeholders,
            "outputs": self.output_meta,
        }


def _size(value: Any) -> Size:
    """A graph's size as a number, or its expression in the batch's symbols."""
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _described(value: Any) -> list[Any] | Size | None:
    """A graph value as plain data: a tensor's [shape, stride, dtype, offset], a size (a
    symbolic int's expression), None for anything else."""
    if isinstance(value, torch.SymInt):
        return _size(value)
    if not isinstance(value, torch.Tensor):
        return None
    return [
        [_size(s) for s in value.shape],
        [_size(s) for s in value.stride()],
        str(value.dtype).removeprefix("torch."),
        _size(value.storage_offset()),
    ]


_SIZE_NODES = (ast.Expression, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Name,
               ast.Constant, ast.UnaryOp, ast.USub, ast.Load)  # fmt: skip


def evaluate(size: Size, symbols: dict[str, int]) -> int:
    """`size` with its symbols given (`256*s24` at s24 = 12 is 3072); an expression of
    anything but numbers, symbols, +, -, * and // refuses the plan."""
    if isinstance(size, int):
        return size
    try:
        tree = ast.parse(size, mode="eval")
    except SyntaxError:
        _refuse(f"a size expression that cannot be read: {size}")
    if not all(isinstance(node, _SIZE_NODES) for node in ast.walk(tree)):
        _refuse(f"a size expression that cannot be read: {size}")
    value = eval(compile(tree, "<size>", "eval"), {"__builtins__": {}}, dict(symbols))
    if not isinstance(value, int):
        _refuse(f"a size expression that is not a whole number: {size}")
    return value


def _meta(described: list[Any], symbols: dict[str, int]) -> TensorMeta:
    """A described tensor's metadata, its sizes evaluated."""
    shape, stride, dtype, offset = described
    return TensorMeta(
        tuple(evaluate(s, symbols) for s in shape),
        tuple(evaluate(s, symbols) for s in stride),
        getattr(torch, dtype),
        evaluate(offset, symbols),
    )


def without_kernel_sources(wrapper: str) -> str:
    """`wrapper` with each kernel's source (`name = async_compile.cpp_pybinding(...)`, most of
    its text) cut to `name = async_compile.kernel()`: the plan reads only that it is one."""
    tree = ast.parse(wrapper)
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.value).startswith("async_compile."):
            node.value = ast.parse("async_compile.kernel()", mode="eval").body
    return ast.unparse(tree)


@dataclass(frozen=True)
class Target:
    """What `capture_graphs` captures: a model called on a batch, and what its forward
    returns."""

    build: Callable[[], torch.nn.Module]
    """Makes the model; called under `torch.device("meta")` (nothing is materialised)."""
    batch: tuple[torch.Tensor, ...]
    """The example inputs on the CPU: the model is called as `model(*batch)`."""
    outputs: tuple[int, ...]
    """The number of dimensions of each of the forward's first user outputs ((3, 0): the
    logits and a scalar loss); more may follow (tensors a forward hands out by a side
    effect)."""
    outputs_name: str
    """What those outputs are, for the check that refuses a plan whose outputs are not them."""
    lower: torch.dtype | None
    """Autocast's dtype (None: no autocast)."""
    kernel: AttentionKernel
    """The CUDA attention op for `scaled_dot_product_attention` without a mask."""
    masked: AttentionKernel | None = None
    """The one for attention with a mask (None: a mask refuses the plan)."""
    label_saved: bool = False
    """Whether the plan names what each saved tensor is (`saved_kinds`)."""
    cuda_realization: bool = False
    """Whether Inductor chooses the values it keeps in buffers as on CUDA
    (`torchapi.planning`); nanoGPT's plans are made with the CPU's choices, which were checked
    against the CUDA backend's peaks."""


SYMBOL = re.compile(r"s\d+")
"""How a batch size traced as a symbol is named in the graphs and the wrapper (`s24`)."""

_SYMBOL_LIKE = re.compile(r"\b[a-z]+\d+\b")
"""A name of a symbol in a guard (`s24`, or `u0` for a data-dependent size); the functions
there are capitalised (`Eq`, `Mod`)."""


def _capture(
    target: Target, symbolic: bool
) -> tuple[dict[str, _Graph], list[dict[str, Any]], list[str]]:
    """Run Dynamo, AOTAutograd and Inductor up to the wrapper code of both graphs; with
    `symbolic`, the batch tensors' first dimension traced as a symbol, and what the graphs
    assume of it (`torchapi.shape_guards`)."""

    graphs: dict[str, _Graph] = {}
    inputs: list[dict[str, Any]] = []
    guards: list[str] = []

    def compiler(which: str) -> torchapi.GraphCompiler:
        def run(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Any:
            nodes = [n for n in gm.graph.nodes if n.op == "placeholder"]
            graph = _Graph(placeholder_names=[n.name for n in nodes], placeholder_nodes=nodes)
            for node in nodes:
                described = _described(node.meta.get("val"))
                if described is None:
                    raise CompiledUnavailable(f"the graph's input {node.name} is not a tensor")
                graph.placeholders.append(described)
            output = next(n for n in gm.graph.nodes if n.op == "output")
            graph.output_meta = [
                _described(getattr(arg, "meta", {}).get("val")) if arg is not None else None
                for arg in output.args[0]
            ]
            graph.output_nodes = list(output.args[0])
            graphs[which] = graph
            graph.wrapper = torchapi.generate_wrapper(gm, example_inputs, which == "bw")
            return _not_runnable

        return run

    def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        params = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        buffers = {id(b): n for n, b in model.named_buffers(remove_duplicate=False)}
        data = [id(t) for t in batch]
        for t in example_inputs:
            if id(t) in params:
                inputs.append({"kind": "param", "name": params[id(t)]})
            elif id(t) in data:
                inputs.append({"kind": "data", "index": data.index(id(t))})
            elif id(t) in buffers:
                inputs.append({"kind": "buffer", "name": buffers[id(t)]})
            elif isinstance(t, torch.SymInt) and symbolic and SYMBOL.fullmatch(str(t)):
                inputs.append({"kind": "size", "symbol": str(t)})
            else:
                raise CompiledUnavailable(
                    "the captured graph has an input that is not a parameter, a buffer or the batch"
                )
        under_policy = _UnderPolicy(gm, target)
        read = torchapi.trace_joint(under_policy, example_inputs, compiler("fw"), compiler("bw"))
        if symbolic:
            if read is None:
                raise CompiledUnavailable("the graphs' assumptions about the batch are unknown")
            guards.extend(read)
        raise _Captured()

    with torch.device("meta"):
        model = target.build().train()
    _to_empty_keeping_ties(model)  # uninitialised pages: never written, never resident
    batch = target.batch
    try:
        with torchapi.planning(target.cuda_realization):
            if symbolic:
                for tensor in batch:
                    torchapi.mark_batch_dynamic(tensor)
            torch.compile(model, backend=backend, fullgraph=True)(*batch)
    except Exception as error:
        if torchapi.root_cause(error, _Captured) is None:
            own = torchapi.root_cause(error, CompiledUnavailable)
            if own is not None:
                raise own from None
            if "Unsupported" in type(error).__name__ or "graph break" in str(error).lower():
                first = str(error).strip().splitlines()[0][:200]
                raise CompiledUnavailable(
                    f"Dynamo cannot capture the model whole: {first}"
                ) from None
            raise CompiledUnavailable(
                f"torch.compile's capture failed: {type(error).__name__}: "
                f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}"
            ) from error
    if "fw" not in graphs or "bw" not in graphs or not graphs["bw"].wrapper:
        raise CompiledUnavailable("Inductor produced no backward graph")
    return graphs, inputs, guards


def _to_empty_keeping_ties(model: torch.nn.Module) -> None:
    """Move `model` from the meta device to uninitialised CPU memory. `to_empty` makes a new
    parameter per module, which unties shared weights (nanoGPT's wte and lm_head): tie them
    again as they were."""
    shared: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        shared.setdefault(id(param), []).append(name)
    model.to_empty(device="cpu")
    for first, *others in (names for names in shared.values() if len(names) > 1):
        param = model.get_parameter(first)
        for name in others:
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, param)


def _not_runnable(*args: Any) -> Any:
    raise RuntimeError("the simulation's compiled graphs are plans, not code")


# --------------------------------------------------------------------------- plan


def _arguments(
    run: WrapperRun,
    described: list[Any],
    sids: list[str | None],
    locals_: set[str],
    symbols: dict[str, int],
) -> tuple[list[Buffer | int], dict[str, Storage]]:
    """The arguments a graph is called with: a size's value, or a tensor's buffer (described,
    or its `TensorMeta` already) on one `Storage` per distinct storage id (views of one
    forward buffer share it), local to the graph where it is in `locals_`."""
    storages: dict[str, Storage] = {}
    args: list[Buffer | int] = []
    for item, sid in zip(described, sids, strict=True):
        if not isinstance(item, (list, TensorMeta)):
            args.append(evaluate(item, symbols))
            continue
        assert sid is not None
        meta = item if isinstance(item, TensorMeta) else _meta(item, symbols)
        if sid not in storages:
            nbytes = storage_bytes(meta.shape, meta.stride, meta.dtype.itemsize)
            storages[sid] = Storage(run, sid, nbytes, local=sid in locals_)
        args.append(Buffer(storages[sid], meta))
    return args, storages


def _same(meta: TensorMeta | None, expected: TensorMeta | None) -> TypeGuard[TensorMeta]:
    """Whether `meta` is a tensor's, of `expected`'s shape and dtype."""
    return (
        meta is not None
        and expected is not None
        and meta.shape == expected.shape
        and meta.dtype == expected.dtype
    )


def _check(ok: bool, what: str) -> None:
    """A check of what was read from the wrapper; a failure refuses the plan."""
    if not ok:
        _refuse(what)


def _refuse(what: str) -> NoReturn:
    """Refuse the plan: what was read from the wrapper failed the check `what`."""
    raise CompiledUnavailable(f"Inductor's plan failed a check: {what}")


def _checked_events(run: WrapperRun, graph: str, given: set[str]) -> None:
    """Every allocation is new, and every free names a storage the graph allocated or was
    `given` (the forward's buffers the backward frees), once."""
    live = set(given)
    freed: set[str] = set()
    for event in run.events:
        kind, sid = event[0], event[1]
        if kind == "alloc":
            _check(sid not in live and sid not in freed, f"{graph}: {sid} allocated twice")
            live.add(sid)
        elif kind == "free":
            _check(sid in live, f"{graph}: {sid} freed but never allocated")
            live.discard(sid)
            freed.add(sid)


def _replay_forward(
    fw: dict[str, Any], n_user: int, symbols: dict[str, int]
) -> tuple[WrapperRun, list[TensorMeta]]:
    """The forward graph's call() on its inputs ('in:k'), checked; and its user outputs'
    metadata: the target's outputs (nanoGPT's logits and loss), then any tensor the model's
    forward hands to Python by a side effect (nanoMoE appends its auxiliary losses to a
    module-level list, which Dynamo returns from the graph). The user outputs' allocations
    become ('output', sid, i) events."""
    forward = WrapperRun()
    inputs = fw["inputs"]
    sids: list[str | None] = [f"in:{k}" for k in range(len(inputs))]
    args, _ = _arguments(forward, inputs, sids, set(), symbols)
    run_call(fw["wrapper"], forward, "fw:", args)
    _checked_events(forward, "forward", set())
    expected = fw["outputs"]
    _check(len(forward.returned) == len(expected), "the forward's outputs' count")
    metas: list[TensorMeta] = []
    for i, (meta, described) in enumerate(zip(forward.returned_meta, expected, strict=True)):
        if isinstance(described, list):
            if not _same(meta, _meta(described, symbols)):
                _refuse(f"the forward's output {i} is not as its graph says")
            metas.append(meta)
        elif meta is not None:
            _refuse(f"the forward's output {i} is a tensor where its graph has a size")
    user_sids = forward.returned[:n_user]
    allocated = {e[1] for e in forward.events if e[0] == "alloc"}
    _check(all(sid in allocated for sid in user_sids), "the forward's outputs are its own buffers")
    for event in forward.events:  # the user's tensor is created where its buffer is
        if event[0] == "alloc" and event[1] in user_sids:
            event[:] = ["output", event[1], user_sids.index(event[1])]
    return forward, metas[:n_user]


def _replay_backward(
    graphs: dict[str, Any], forward: WrapperRun, symbols: dict[str, int]
) -> WrapperRun:
    """The backward graph's call(), checked: its inputs are the saved tensors (AOTAutograd
    clears the context before the call, so each of its names holds its storage: the forward's
    buffers are freed here at their last use, the forward's inputs released), the saved sizes,
    and the incoming gradients ('tan:i') and user outputs, held by autograd and the caller
    until it returns."""
    n_user, bw = graphs["n_user"], graphs["bw"]
    fw_local = {e[1] for e in forward.events if e[0] in ("alloc", "output")}
    saved_outputs = zip(
        forward.returned[n_user:],
        forward.returned_meta[n_user:],
        graphs["fw"]["outputs"][n_user:],
        strict=True,
    )
    saved = iter([(s, m) for s, m, d in saved_outputs if isinstance(d, list)])
    sids: list[str | None] = []
    described: list[Any] = []
    tangents = 0
    for name, item in zip(bw["names"], bw["inputs"], strict=True):
        if not isinstance(item, list):  # a size saved for the backward
            sids.append(None)
            described.append(item)
        elif name.startswith("tangents"):
            sids.append(f"tan:{tangents}")
            described.append(item)
            tangents += 1
        else:
            sid, saved_meta = next(saved, (None, None))
            if sid is None or not _same(saved_meta, _meta(item, symbols)):
                _refuse(f"saved tensor {name}")
            sids.append(sid)
            described.append(saved_meta)
    backward = WrapperRun()
    held_sids = {*forward.returned[:n_user], *(s for s in sids if s and s.startswith("tan:"))}
    args, storages = _arguments(backward, described, sids, fw_local - held_sids, symbols)
    held = [storages[s] for s in held_sids if s in storages]
    given = {sid for sid, storage in storages.items() if storage.local}
    del storages
    run_call(bw["wrapper"], backward, "bw:", args)
    del held
    _checked_events(backward, "backward", given)
    return backward


def _mark_gradients(backward: WrapperRun, inputs: list[TensorMeta | None]) -> None:
    """Check that the backward returns one gradient per input (none for a size), of its
    shape, each in a buffer of its own, and make each gradient's allocation a
    ('grad', sid, input index) event."""
    _check(len(backward.returned) == len(inputs), "the backward returns one gradient per input")
    given = [sid for sid in backward.returned if sid is not None]
    _check(len(set(given)) == len(given), "no two gradients share a buffer")
    allocated = {e[1]: e for e in backward.events if e[0] == "alloc"}
    for k, (sid, meta) in enumerate(zip(backward.returned, backward.returned_meta, strict=True)):
        if sid is None:
            continue
        _check(sid in allocated, f"gradient {k} is not a buffer of the backward graph")
        _check(_same(meta, inputs[k]), f"gradient {k} has its input's shape")
        allocated[sid][:] = ["grad", sid, k]


def nanogpt_target(
    spec: StepSpec, batch_size: int, lower: torch.dtype | None, kernel: AttentionKernel
) -> Target:
    """nanoGPT's compiled step (or a project's model of nanoGPT's interface) as
    `capture_graphs` captures it: the model of `spec.shape` called on an int64 batch X, Y of
    `batch_size` rows, returning the logits and the loss."""
    from pytest_gptcfg.engine.nanogpt import GPT

    factory = spec.model_factory or GPT
    batch = tuple(torch.empty((batch_size, spec.block_size), dtype=torch.long) for _ in range(2))
    return Target(
        lambda: factory(spec.shape), batch, (3, 0), "the logits and the loss", lower, kernel
    )


_VIEWS = frozenset(
    {"view", "reshape", "_unsafe_view", "permute", "transpose", "t", "expand", "slice",
     "select", "unsqueeze", "squeeze", "alias", "as_strided"}
)  # fmt: skip
_CASTS = frozenset({"convert_element_type", "_to_copy"})
_ATTENTION = frozenset(
    {"_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention"}
)


def _op(node: Any) -> str:
    """The op an FX node calls, without namespace and overload (`permute`); '' if none."""
    if getattr(node, "op", None) != "call_function":
        return ""
    name = getattr(node.target, "name", None)
    if callable(name):
        return str(name()).split("::")[-1].split(".")[0]
    return str(getattr(node.target, "__name__", ""))


def _base(node: Any) -> Any:
    """The node whose tensor `node` is a view of (itself if it is none)."""
    while _op(node) in _VIEWS:
        node = node.args[0]
    return node


def saved_kinds(fw: _Graph, inputs: list[dict[str, Any]], n_user: int) -> list[str | None]:
    """What each tensor the forward graph saves is, read from its FX graph: 'attention' for
    what an attention kernel saves (its q, k, v and bias, its outputs), 'weight_casts' for a
    16-bit copy of a parameter (nanochat's `Linear` casts its fp32 weight per call); None for
    anything else."""
    pairs = zip(fw.placeholder_nodes, inputs, strict=True)
    params = {node for node, spec in pairs if spec["kind"] == "param"}
    calls = [n for n in fw.placeholder_nodes[0].graph.nodes if _op(n) in _ATTENTION]
    attention = {_base(a) for n in calls for a in n.args[:4] if hasattr(a, "op")}
    attention |= {n for call in calls for n in call.users}
    kinds: list[str | None] = []
    for node in fw.output_nodes[n_user:]:
        base = _base(node) if node is not None else None
        if base in attention:
            kinds.append("attention")
        elif base is not None and _op(base) in _CASTS and _base(base.args[0]) in params:
            kinds.append("weight_casts")
        else:
            kinds.append(None)
    return kinds


def capture_graphs(target: Target, symbolic: bool = False) -> dict[str, Any]:
    """The compiled forward and backward graphs of `target` as Inductor plans them, as plain
    data (JSON-ready) from which `plan_at` makes the memory plan at a batch size.

    With `symbolic`, the batch tensors' first dimension is traced as a symbol (Dynamo's
    dynamic shapes): the wrappers' sizes are expressions in it, and one capture serves every
    batch of 2 or more (Dynamo specialises a batch of 1). Without, the graphs are those of
    `target.batch`'s size only.

    `inputs`: the forward graph's inputs in order ({'kind': 'param', 'name'},
    {'kind': 'buffer', 'name'}, {'kind': 'data', 'index'} into the batch, or
    {'kind': 'size', 'symbol'}: the batch size); `fw` and `bw`: each graph's wrapper code, its
    inputs' names and descriptions and its outputs' (a tensor's [shape, stride, dtype,
    offset] or a size, in numbers and symbols); `guards`: what the graphs assume of the batch
    (a batch where one is false raises `OutsideGuards` in `plan_at`); `n_user`: the forward's
    user outputs (the target's, then any a forward hands out by a side effect); `saved`: with
    `target.label_saved`, what each of the forward's other outputs is (`saved_kinds`).

    Dynamo, AOTAutograd and Inductor run in a forked child where one can be made and can run
    a backward (`forked.run_apart`, `forked.autograd_forks`), with Inductor's modules loaded
    here first so that every child has them: what they leave (millions of objects in reference
    cycles: a second of this process's garbage collections after GPT-2's capture) ends with
    the child. Where they run, they run with room on CPython's frame stack (`framestack`).
    """
    torchapi.load_compiler()  # here, not at the top: seconds an eager simulation never needs
    return forked.run_apart(
        lambda: framestack.with_room(lambda: _graphs_of(target, symbolic)),
        passed=(CompiledUnavailable,),
        autograd=True,
    )


def _graphs_of(target: Target, symbolic: bool) -> dict[str, Any]:
    """`capture_graphs`' work, where it runs."""
    start = time.perf_counter()
    graphs, inputs, guards = _capture(target, symbolic)
    fw, bw = graphs["fw"], graphs["bw"]
    _check(len(fw.placeholders) == len(inputs), "the forward graph's inputs are not the model's")
    n_saved = sum(not name.startswith("tangents") for name in bw.placeholder_names)
    n_user = len(fw.output_meta) - n_saved
    first = [len(d[0]) if isinstance(d, list) else None for d in fw.output_meta[:n_user]]
    _check(
        tuple(first[: len(target.outputs)]) == target.outputs,
        f"the forward graph's first outputs are not {target.outputs_name}",
    )
    symbols = sorted(
        {spec["symbol"] for spec in inputs if spec["kind"] == "size"}
        | {name for guard in guards for name in _SYMBOL_LIKE.findall(guard)}
    )
    for name in symbols:  # only the batch was made a symbol: no data-dependent size
        _check(SYMBOL.fullmatch(name) is not None, f"a size that is not the batch's: {name}")
    for graph in (fw, bw):
        for name in _names_in(graph.placeholders, graph.output_meta):
            _check(name in symbols, f"a size in the graphs that is not the batch's: {name}")
    return {
        "torch": torch.__version__,
        "symbolic": bool(symbols),
        "symbols": symbols,
        "guards": guards,
        "inputs": inputs,
        "fw": fw.as_data(),
        "bw": bw.as_data(),
        "n_user": n_user,
        "saved": saved_kinds(fw, inputs, n_user) if target.label_saved else None,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _names_in(*described: list[Any]) -> set[str]:
    """The symbols the sizes of described inputs and outputs name."""
    sizes: list[Any] = []
    for items in described:
        for item in items:
            sizes += [*item[0], *item[1], item[3]] if isinstance(item, list) else [item]
    return {name for size in sizes if isinstance(size, str) for name in _IDENTIFIER.findall(size)}


_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def plan_at(graphs: dict[str, Any], batch: int) -> dict[str, Any]:
    """The compiled step's forward and backward memory plans at batch size `batch`, from
    `capture_graphs`' graphs, as plain data (JSON-ready).

    `inputs`: as the graphs'; `outputs`: the user outputs (nanoGPT's logits and loss) as
    [shape, dtype]; `fw` and `bw`: event lists ('alloc', sid, nbytes, dtype) / ('free', sid) /
    ('release', sid) / ('output', sid, i) / ('grad', sid, input index); storage ids 'in:k' are
    the forward's inputs, 'tan:i' the backward's incoming gradients. With the graphs'
    `saved`, `saved`: what the forward's saved storages are ({sid: 'attention' |
    'weight_casts'}).

    Each graph's `call()` is run on stand-in buffers (`wrappercall`), the batch's symbols set
    to `batch`, and what it did is checked before the plan is used: every free names an
    allocation, the forward returns tensors of the shapes and dtypes its FX graph declares
    (the user's outputs and the saved tensors), the saved tensors are the backward's inputs,
    and the backward returns one gradient of each input's shape, in buffers of its own. A
    failed check raises `CompiledUnavailable`.
    """
    start = time.perf_counter()
    symbols = dict.fromkeys(graphs["symbols"], batch)
    if symbols and not torchapi.guards_hold(graphs["guards"], symbols):
        raise OutsideGuards(f"the graphs captured for every batch size do not hold at {batch}")
    n_user = graphs["n_user"]
    try:
        forward, outputs = _replay_forward(graphs["fw"], n_user, symbols)
        backward = _replay_backward(graphs, forward, symbols)
    except WrapperUnreadable as error:
        raise CompiledUnavailable(f"Inductor's wrapper code could not be run: {error}") from None
    inputs = [_meta(d, symbols) if isinstance(d, list) else None for d in graphs["fw"]["inputs"]]
    _mark_gradients(backward, inputs)
    plan = {
        "torch": graphs["torch"],
        "inputs": graphs["inputs"],
        "outputs": [[list(m.shape), str(m.dtype)] for m in outputs],
        "fw": [e for e in forward.events if e[0] != "release"],  # the caller's inputs
        "bw": backward.events,
        "symbolic": graphs["symbolic"],
        "seconds": round(graphs["seconds"] + time.perf_counter() - start, 2),
    }
    if graphs["saved"] is not None:
        allocated = {e[1] for e in forward.events if e[0] == "alloc"}
        named: dict[str, str] = {}
        for sid, kind in zip(forward.returned[n_user:], graphs["saved"], strict=True):
            if sid is not None and sid in allocated and kind is not None:
                named.setdefault(sid, kind)
        plan["saved"] = named
    return plan
