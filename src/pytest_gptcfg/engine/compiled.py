"""Inductor's memory plan of nanoGPT's compiled forward and backward graphs, found on the CPU.

This is the one module of the plugin that uses PyTorch's private APIs (`torch._dynamo`,
`torch._functorch`, `torch._inductor`); everything else sees only the plain-data plan
`plan_graphs` returns. Supported torch: 2.13.x (the release it was written and tested against:
Inductor's wrapper-code format and `GraphLowering` change between releases). Any other version
raises `CompiledUnavailable`, which the plugin reports as a note before simulating the eager
step instead.

Method, as `torch.compile(model)` does it on CUDA, but stopped before anything runs:

1. Dynamo captures `model(X, Y)` (forward and loss) with a capturing backend, `fullgraph=True`:
   a graph break is reported, not simulated. The model is built on the meta device and moved
   to uninitialised CPU memory (never touched), so no weights are materialised.
2. AOTAutograd traces the joint forward-backward graph on fake CPU tensors with Inductor's
   decomposition table and min-cut partitioner, under the simulation's `CudaBehaviour`
   (CUDA's autocast casts, CUDA's cross-entropy), with attention as the CUDA op the target
   GPU runs (`_scaled_dot_product_flash_attention` / `_efficient_attention`, or the math
   kernel's ops).
3. Inductor lowers, fuses and plans each graph with its CPU (C++) backend, and stops after the
   wrapper code is generated (nothing is compiled). The wrapper's `call()` lists every
   allocation, buffer reuse and `del` of the graph: `_replay` turns it into events over
   storages, with reference counts, so a buffer dies when its last name goes. The CPU
   backend's plan stands in for the Triton backend's (the research prototype found the same
   peaks within 0.01 GiB); kernel-internal scratch (FlashAttention's backward accumulators,
   cuBLAS workspaces) is not in the plan.
"""

from __future__ import annotations

import ast
import contextlib
import math
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from gptlint.estimate import FLASH, MATH
from gptlint.kinds import AttentionKernel
from gptlint.run import StepSpec
from pytest_gptcfg.engine import kernels
from pytest_gptcfg.engine.simulate import _SDPA_PARAMS, CudaBehaviour

SUPPORTED_TORCH = ((2, 13), (2, 13))
"""Oldest and newest (major, minor) torch whose Inductor wrapper code this module reads."""

PLAN_FORMAT = 1
"""Bumped whenever the plan's contents change, so cached plans of an older format are unused."""

DTYPE_BYTES = {
    "torch.float32": 4, "torch.float": 4, "torch.bfloat16": 2, "torch.float16": 2,
    "torch.half": 2, "torch.int64": 8, "torch.long": 8, "torch.int32": 4, "torch.bool": 1,
    "torch.uint8": 1, "torch.int8": 1, "torch.float64": 8, "torch.uint64": 8,
    "torch.uint32": 4, "torch.int16": 2,
}  # fmt: skip
"""Bytes per element of each dtype the wrapper code names (`empty_strided(..., torch.bfloat16)`)."""


class CompiledUnavailable(Exception):
    """The compiled step cannot be simulated here; the message says why (it becomes a note)."""


def torch_supported(version: str = torch.__version__) -> bool:
    """Whether `version` is in `SUPPORTED_TORCH`."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return False
    found = (int(match.group(1)), int(match.group(2)))
    return SUPPORTED_TORCH[0] <= found <= SUPPORTED_TORCH[1]


def require_supported_torch() -> None:
    """Raise `CompiledUnavailable` unless this torch is supported."""
    if not torch_supported():
        low, high = (".".join(map(str, v)) for v in SUPPORTED_TORCH)
        span = low if low == high else f"{low} to {high}"
        raise CompiledUnavailable(
            f"torch {torch.__version__}: the compiled simulation reads Inductor's plans of "
            f"torch {span} only"
        )


# --------------------------------------------------------------------------- capture


class _CompiledBehaviour(CudaBehaviour):
    """`CudaBehaviour` with attention as the CUDA op the graph holds under torch.compile."""

    def __init__(self, lower: torch.dtype | None, kernel: AttentionKernel) -> None:
        super().__init__(lower, (9, 0))
        self.kernel = kernel

    def _attention(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a = dict(zip(_SDPA_PARAMS, args, strict=False))
        a.update(kwargs)
        if a.get("enable_gqa") or a.get("attn_mask") is not None:
            raise CompiledUnavailable("attention with a mask or GQA is not simulated compiled")
        q, k, v = a["query"], a["key"], a["value"]
        is_causal, scale = a.get("is_causal", False), a.get("scale")
        dropout_p = a.get("dropout_p", 0.0)
        self.attention_kernels.add(self.kernel)
        if self.kernel == MATH:
            return kernels.math_attention(q, k, v, is_causal, dropout_p, scale)
        head_dim = q.size(-1)
        scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
        pad = -head_dim % 8
        if pad:
            q, k, v = (torch.nn.functional.pad(t, (0, pad)) for t in (q, k, v))
        if self.kernel == FLASH:
            out = torch.ops.aten._scaled_dot_product_flash_attention(
                q, k, v, dropout_p, is_causal, False, scale=scale
            )[0]
        else:
            out = torch.ops.aten._scaled_dot_product_efficient_attention(
                q, k, v, None, True, dropout_p, is_causal, scale=scale
            )[0]
        return out[..., :head_dim] if pad else out


class _UnderPolicy(torch.nn.Module):
    """Dynamo's graph, run (traced) under the CUDA behaviour."""

    def __init__(self, gm: torch.nn.Module, lower: torch.dtype | None, kernel: AttentionKernel):
        super().__init__()
        self.gm = gm
        self.lower = lower
        self.kernel = kernel

    def forward(self, *args: Any) -> Any:
        with _CompiledBehaviour(self.lower, self.kernel):
            return self.gm(*args)


class _Captured(Exception):
    pass


class _StopAfterCodegen(Exception):
    pass


@dataclass
class _Graph:
    wrapper: str = ""
    sizes: dict[str, int] | None = None
    placeholders: list[str] | None = None
    output_meta: list[tuple[list[int], str] | None] | None = None


def _storage_bytes(shape: list[int], stride: list[int], itemsize: int) -> int:
    if any(s == 0 for s in shape):
        return 0
    return (1 + sum((s - 1) * st for s, st in zip(shape, stride, strict=True))) * itemsize


@contextlib.contextmanager
def _codegen_only(sink: list[_Graph]) -> Iterator[None]:
    """Make `GraphLowering.compile_to_module` generate the wrapper, record it and the buffers'
    storage sizes into `sink[-1]`, and stop (no C++ compiled, nothing run)."""
    from torch._inductor import graph as graph_mod

    original = graph_mod.GraphLowering.compile_to_module

    def compile_to_module(self: Any) -> Any:
        code = self.codegen()
        code = code[0] if isinstance(code, tuple) else code
        sizes: dict[str, int] = {}
        for buf in self.buffers:
            try:
                layout = buf.get_layout()
                shape = [int(s) for s in layout.size]
                stride = [int(s) for s in layout.stride]
                sizes[buf.get_name()] = _storage_bytes(shape, stride, layout.dtype.itemsize)
            except Exception:
                continue
        sink[-1].wrapper = code.value if hasattr(code, "value") else str(code)
        sink[-1].sizes = sizes
        raise _StopAfterCodegen()

    graph_mod.GraphLowering.compile_to_module = compile_to_module
    try:
        yield
    finally:
        graph_mod.GraphLowering.compile_to_module = original


def _root_cause(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kind):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or getattr(cause, "inner_exception", None) or cause.__context__
    return None


def _capture(spec: StepSpec, lower: torch.dtype | None, kernel: AttentionKernel) -> dict[str, Any]:
    """Run Dynamo, AOTAutograd and Inductor up to the wrapper code of both graphs."""
    # Imported here, not at the top: loading Dynamo and Inductor takes seconds that an eager
    # simulation never needs. Their modules use the deprecated torch.jit.script_method while
    # loading, which says nothing about the user's config: keep it out of their test run.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        import torch._dynamo
        import torch._functorch.config as functorch_config
        import torch._inductor.config as inductor_config
        from torch._functorch.aot_autograd import aot_module_simplified
        from torch._guards import detect_fake_mode
        from torch._inductor.compile_fx import compile_fx_inner, partition_fn
        from torch._inductor.decomposition import select_decomp_table
        from torch._inductor.virtualized import V
        from torch._subclasses.fake_tensor import FakeTensorMode

    from pytest_gptcfg.engine.nanogpt import GPT

    graphs: dict[str, _Graph] = {}
    sink: list[_Graph] = []
    inputs: list[dict[str, Any]] = []

    def compiler(which: str) -> Any:
        def run(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
            graph = _Graph(placeholders=[n.name for n in gm.graph.nodes if n.op == "placeholder"])
            output = next(n for n in gm.graph.nodes if n.op == "output")
            metas: list[tuple[list[int], str] | None] = []
            for arg in output.args[0]:
                val = getattr(arg, "meta", {}).get("val") if arg is not None else None
                if isinstance(val, torch.Tensor):
                    metas.append(([int(s) for s in val.shape], str(val.dtype)))
                else:
                    metas.append(None)
            graph.output_meta = metas
            graphs[which] = graph
            sink.append(graph)
            try:
                compile_fx_inner(gm, example_inputs, is_backward=which == "bw")
            except _StopAfterCodegen:
                pass
            except Exception as error:
                if _root_cause(error, _StopAfterCodegen) is None:
                    raise
            return _not_runnable

        return run

    def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        params = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        data = [id(X), id(Y)]
        for t in example_inputs:
            if id(t) in params:
                inputs.append({"kind": "param", "name": params[id(t)]})
            elif id(t) in data:
                inputs.append({"kind": "data", "index": data.index(id(t))})
            else:
                raise CompiledUnavailable(
                    "the captured graph has an input that is not a parameter or the batch"
                )
        # Inductor's joint-graph passes (its random-op seeding for dropout) read the fake mode
        # from V, as compile_fx sets it.
        fake_mode = detect_fake_mode(example_inputs) or FakeTensorMode(allow_non_fake_inputs=True)
        with V.set_fake_mode(fake_mode):
            aot_module_simplified(
                _UnderPolicy(gm, lower, kernel),
                example_inputs,
                fw_compiler=compiler("fw"),
                bw_compiler=compiler("bw"),
                partition_fn=partition_fn,
                decompositions=select_decomp_table(),
                keep_inference_input_mutations=True,
            )
        raise _Captured()

    with torch.device("meta"):
        model = GPT(spec.shape).train()
    model = model.to_empty(device="cpu")  # uninitialised pages: never written, never resident
    model.transformer.wte.weight = model.lm_head.weight
    X = torch.empty((spec.batch_size, spec.block_size), dtype=torch.long)
    Y = torch.empty((spec.batch_size, spec.block_size), dtype=torch.long)
    torch._dynamo.reset()
    patches = (
        inductor_config.patch({"fx_graph_cache": False, "compile_threads": 1}),
        functorch_config.patch(
            {"force_non_lazy_backward_lowering": True, "enable_autograd_cache": False}
        ),
    )
    try:
        with patches[0], patches[1], _codegen_only(sink):
            torch.compile(model, backend=backend, fullgraph=True)(X, Y)
    except Exception as error:
        if _root_cause(error, _Captured) is None:
            own = _root_cause(error, CompiledUnavailable)
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
    finally:
        torch._dynamo.reset()
    if "fw" not in graphs or "bw" not in graphs or not graphs["bw"].wrapper:
        raise CompiledUnavailable("Inductor produced no backward graph")
    return {"graphs": graphs, "inputs": inputs}


def _not_runnable(*args: Any) -> Any:
    raise RuntimeError("the simulation's compiled graphs are plans, not code")


# --------------------------------------------------------------------------- replay

_EMPTY = re.compile(r"^(\w+) = empty_strided(?:_\w+)?\((\(.*?\)), (\(.*?\)), (torch\.\w+)")
_REUSE = re.compile(r"^(\w+) = (?:reinterpret_tensor\()?(\w+)\b.*; del (\w+)\s+# reuse")
_ALIAS = re.compile(r"^(\w+) = reinterpret_tensor\((\w+),")
_GETITEM = re.compile(r"^(\w+) = (\w+)\[(\d+)\]$")
_ASSIGN_CALL = re.compile(r"^(\w+) = ([\w\.]+)\(")
_UNPACK = re.compile(r"^([\w, ]+?),? = args$")
_IGNORED_CALLS = ("get_raw_stream", "copy_if_misaligned")


def _call_body(wrapper: str) -> list[str]:
    lines = wrapper.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if re.match(r"\s*def call\(self, args\):", line)),
        None,
    )
    if start is None:
        raise CompiledUnavailable("Inductor's wrapper code has no call(): unknown format")
    indent = len(lines[start]) - len(lines[start].lstrip()) + 4
    body = []
    for line in lines[start + 1 :]:
        if line.strip() and (len(line) - len(line.lstrip())) < indent:
            break
        body.append(line.strip())
    return body


def _split_top(text: str) -> list[str]:
    out, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        out.append(current.strip())
    return out


class _Replay:
    """Storage-level reference counting over one graph's `call()`.

    `external` maps input names to storage ids owned outside the graph (their frees are
    reported as releases, not frees); `held` maps storage ids to references held outside the
    graph's own names. Events: ('alloc', sid, nbytes, dtype), ('free', sid), ('release', sid).
    """

    def __init__(self, prefix: str, sizes: dict[str, int]) -> None:
        self.prefix = prefix
        self.sizes = sizes
        self.ref: dict[str, str] = {}
        self.count: dict[str, int] = {}
        self.nbytes: dict[str, int] = {}
        self.local: set[str] = set()
        self.events: list[list[Any]] = []
        self.returned: list[str | None] = []

    def bind(self, name: str, sid: str) -> None:
        old = self.ref.get(name)
        self.ref[name] = sid
        self.count[sid] = self.count.get(sid, 0) + 1
        if old is not None:
            self.drop(old)

    def drop(self, sid: str) -> None:
        self.count[sid] -= 1
        if self.count[sid] == 0:
            self.events.append(["free" if sid in self.local else "release", sid])

    def unbind(self, name: str) -> None:
        sid = self.ref.pop(name, None)
        if sid is not None:
            self.drop(sid)

    def alloc(self, name: str, nbytes: int, dtype: str) -> None:
        sid = self.prefix + name
        self.local.add(sid)
        self.nbytes[sid] = nbytes
        self.events.append(["alloc", sid, nbytes, dtype])
        self.bind(name, sid)

    def run(self, wrapper: str, inputs: dict[str, str], held: dict[str, int]) -> None:
        for sid, n in held.items():
            self.count[sid] = self.count.get(sid, 0) + n
        unknown = []
        for line in _call_body(wrapper):
            if not line or line.startswith(("#", "assert", "args.clear()")):
                continue
            if (m := _UNPACK.match(line)) is not None:
                for name in (x.strip() for x in m.group(1).split(",")):
                    if name:
                        self.bind(name, inputs[name])
            elif (m := _EMPTY.match(line)) is not None:
                name, shape, stride, dtype = m.groups()
                if dtype not in DTYPE_BYTES:
                    unknown.append(line)
                    continue
                size = _storage_bytes(
                    list(ast.literal_eval(shape)), list(ast.literal_eval(stride)),
                    DTYPE_BYTES[dtype],
                )  # fmt: skip
                self.alloc(name, size, dtype.removeprefix("torch."))
            elif (m := _REUSE.match(line)) is not None:
                new, source, dead = m.groups()
                self.bind(new, self.ref[source])
                self.unbind(dead)
            elif (m := _ALIAS.match(line)) is not None:
                self.bind(m.group(1), self.ref[m.group(2)])
            elif (m := _GETITEM.match(line)) is not None:
                self.alloc(m.group(1), self.sizes.get(m.group(1), 0), "")
            elif line.startswith("del "):
                for name in line[4:].split(","):
                    self.unbind(name.strip())
            elif line.startswith("return"):
                expr = line[len("return") :].strip().rstrip(",").strip()
                if expr.startswith("(") and expr.endswith(")"):
                    expr = expr[1:-1]
                for item in _split_top(expr):
                    m = re.match(r"reinterpret_tensor\((\w+)", item)
                    name = m.group(1) if m else item.strip()
                    sid = self.ref.get(name)
                    self.returned.append(sid)
                    if sid is not None:
                        self.count[sid] += 1  # the caller's reference
                for name in list(self.ref):
                    self.unbind(name)
                break
            elif (m := _ASSIGN_CALL.match(line)) is not None:
                name, func = m.groups()
                if func == "reinterpret_tensor" or func in _IGNORED_CALLS:
                    continue
                if name in self.sizes:  # a fallback kernel with one output
                    self.alloc(name, self.sizes[name], "")
                elif not func.startswith("torch.ops."):  # multi-output: its items follow
                    unknown.append(line)
            elif re.match(r"^\w+ = ", line):
                unknown.append(line)
        if unknown:
            raise CompiledUnavailable(
                f"unrecognised line in Inductor's wrapper code: {unknown[0][:120]!r}"
            )


def plan_graphs(spec: StepSpec, lower: torch.dtype | None, kernel: AttentionKernel) -> dict:
    """The compiled step's forward and backward memory plans as plain data (JSON-ready).

    `inputs`: the forward graph's inputs in order ({'kind': 'param', 'name'} or
    {'kind': 'data', 'index'}); `outputs`: the user outputs (logits, loss) as [shape, dtype];
    `fw` and `bw`: event lists ('alloc', sid, nbytes, dtype) / ('free', sid) /
    ('release', sid) / ('output', sid, i) / ('grad', sid, input index); storage ids 'in:k' are
    the forward's inputs, 'tan:i' the backward's incoming gradients.
    """
    require_supported_torch()
    start = time.perf_counter()
    captured = _capture(spec, lower, kernel)
    fw, bw = captured["graphs"]["fw"], captured["graphs"]["bw"]
    n_inputs = len(captured["inputs"])
    fw_names = fw.placeholders or []
    if len(fw_names) != n_inputs:
        raise CompiledUnavailable("the forward graph's inputs do not match the model's")
    forward = _Replay("fw:", fw.sizes or {})
    forward.run(fw.wrapper, {n: f"in:{k}" for k, n in enumerate(fw_names)}, {})
    bw_names = bw.placeholders or []
    tangents = [n for n in bw_names if n.startswith("tangents")]
    saved = [n for n in bw_names if not n.startswith("tangents")]
    n_user = len(forward.returned) - len(saved)
    if n_user != 2:
        raise CompiledUnavailable(f"the forward graph returns {n_user} outputs, not logits, loss")
    user_sids = forward.returned[:n_user]
    outputs = []
    for i, (sid, meta) in enumerate(zip(user_sids, (fw.output_meta or [])[:n_user], strict=True)):
        if sid is None or sid not in forward.local or meta is None:
            raise CompiledUnavailable("the forward graph's outputs are not its own buffers")
        outputs.append(list(meta))
        for event in forward.events:  # the user's tensor is created where its buffer is
            if event[0] == "alloc" and event[1] == sid:
                event[:] = ["output", sid, i]
    # Backward: the saved tensors (ctx cleared before the call: each name holds its storage),
    # the incoming gradients (held by autograd until the call returns).
    bw_inputs: dict[str, str] = {}
    for name, sid in zip(saved, forward.returned[n_user:], strict=True):
        if sid is None:
            raise CompiledUnavailable(f"no storage for the saved tensor {name}")
        bw_inputs[name] = sid
    for i, name in enumerate(tangents):
        bw_inputs[name] = f"tan:{i}"
    backward = _Replay("bw:", bw.sizes or {})
    backward.local = set(forward.local) - set(user_sids)
    backward.nbytes = dict(forward.nbytes)
    held = {f"tan:{i}": 1 for i in range(len(tangents))}
    for sid in {*user_sids, *(f"in:{k}" for k in range(n_inputs))}:
        held[sid] = 1
    # the forward's own buffers that are saved lose the forward's reference when ctx is cleared
    for sid in set(forward.returned[n_user:]):
        if sid in backward.local:
            backward.count[sid] = 0
    backward.run(bw.wrapper, bw_inputs, held)
    if len(backward.returned) != n_inputs:
        raise CompiledUnavailable("the backward graph's gradients do not match the inputs")
    for k, sid in enumerate(backward.returned):
        if sid is None:
            continue
        if not sid.startswith("bw:"):
            raise CompiledUnavailable("a gradient is not a buffer of the backward graph")
        for event in backward.events:
            if event[0] == "alloc" and event[1] == sid:
                event[:] = ["grad", sid, k]
    # releases of storages the runtime does not hold (user outputs, tangents) are no-ops
    bw_events = [
        e for e in backward.events if not (e[0] == "release" and not e[1].startswith("in:"))
    ]
    fw_events = [e for e in forward.events if e[0] != "release"]
    return {
        "format": PLAN_FORMAT,
        "torch": torch.__version__,
        "inputs": captured["inputs"],
        "outputs": outputs,
        "fw": fw_events,
        "bw": bw_events,
        "tangents": len(tangents),
        "seconds": round(time.perf_counter() - start, 2),
    }
