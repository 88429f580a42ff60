"""Every private PyTorch name the plugin uses, and the differences between releases in them.

PyTorch's private APIs (`torch._subclasses`, `torch._dynamo`, `torch._functorch`,
`torch._inductor`, `torch._C`, `torch.utils._*`, and underscored names such as
`torch.cuda.memory._snapshot`) change between releases without notice. This is the one module of
the plugin that names them (`tests/plugin/test_private_torch.py` holds the others to it), so a
new release is met here; the rest of the engine uses what it exports.

Dynamo, AOTAutograd and Inductor are imported only to plan a compiled step (`load_compiler`):
loading them takes seconds that an eager simulation never needs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import importlib.util
import inspect
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
from torch._subclasses import fake_tensor
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode, in_kernel_invocation_manager
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from pytest_gptcfg.engine import collector, forked

__all__ = [
    "META_HANDLERS",
    "FakeTensor",
    "FakeTensorMode",
    "GraphCompiler",
    "PlainDispatchFakeMode",
    "TorchDispatchMode",
    "clear_cublas_workspaces",
    "compiled_original",
    "default_device",
    "deferred_compile",
    "generate_wrapper",
    "guards_hold",
    "in_kernel_invocation_manager",
    "inductor_extern_kernels",
    "load_compiler",
    "mark_batch_dynamic",
    "memory_snapshot",
    "op_schema",
    "parse_to",
    "planning",
    "record_memory_history",
    "reset_dynamo",
    "root_cause",
    "shape_guards",
    "storage_key",
    "trace_joint",
    "tree_leaves",
]

# --------------------------------------------------------------------------- fake tensors

META_HANDLERS: dict[Any, Any] = getattr(fake_tensor, "_DISPATCH_META_HANDLERS", {})
"""Metadata queries (`prim.device`, `aten.size` ...) the fake mode answers from the tensor."""


class PlainDispatchFakeMode(FakeTensorMode):
    """A `FakeTensorMode` whose subclasses' `__torch_dispatch__` torch leaves as written; the
    first one this process enters starts autograd's engine first (`start_autograd`)."""

    def __enter__(self) -> Any:
        start_autograd()
        return super().__enter__()

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Dynamo never runs under the simulation: keep __torch_dispatch__ unwrapped (torch wraps
        # a mode's __torch_dispatch__ in `torch._disable_dynamo` by default, a cost on every op)
        return False


@functools.cache
def start_autograd() -> None:
    """Start autograd's engine in this process, before a fake mode is entered, so that a fork
    of it can still run a backward (`forked.autograd_forks`).

    The engine starts at the first backward, with a thread for each device of each device
    type that has a guard, and a process with such threads refuses a backward in its forks.
    On a build of torch with CUDA and no GPU, CUDA has none: no threads. But entering a
    `FakeTensorMode` there gives CUDA a no-op guard (`torch._C._ensureCUDADeviceGuardSet`),
    and an engine started after that makes a thread (seen on torch 2.14.1+cu130): every
    capture after the first simulated step then ran in the process. Started here first (a
    one-element backward on the CPU, whatever the default device), it makes none. With a GPU
    it makes the GPUs' threads either way."""
    torch.ones(1, device="cpu", requires_grad=True).sum().backward()


default_device: Callable[[], Any] = getattr(torch._C, "_get_default_device", lambda: None)
"""The device `torch.set_default_device` set (None where the release cannot say)."""


def storage_key(storage: torch.UntypedStorage) -> int:
    """A live storage's identity, the same through every tensor and view on it."""
    return storage._cdata


def op_schema(op: Any) -> Any:
    """An op's schema (its arguments, returns, alias sets, mutability); None if `op` has none."""
    return getattr(op, "_schema", None)


def parse_to(*args: Any, **kwargs: Any) -> tuple[Any, torch.dtype | None, bool, Any]:
    """What `Tensor.to(...)` / `Module.to(...)` arguments ask for: (device, dtype,
    non_blocking, memory_format), each None where not given."""
    parsed: tuple[Any, torch.dtype | None, bool, Any] = torch._C._nn._parse_to(*args, **kwargs)
    return parsed


# --------------------------------------------------------------------------- CUDA


def clear_cublas_workspaces() -> None:
    """Drop cuBLAS's workspaces (each check allocates its own), where the release can."""
    clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
    if clear is not None:
        clear()


record_memory_history = torch.cuda.memory._record_memory_history
"""Start (or, with `enabled=None`, stop) CUDA's allocator recorder."""

memory_snapshot = torch.cuda.memory._snapshot
"""CUDA's allocator state and recorded trace, the format memory_viz opens."""


# --------------------------------------------------------------------------- Dynamo, Inductor


_COMPILER_MODULES = (
    "torch._dynamo",
    "torch._functorch.config",
    "torch._inductor.config",
    "torch._functorch.aot_autograd",
    "torch._guards",
    "torch._inductor.compile_fx",
    "torch._inductor.decomposition",
    "torch._inductor.virtualized",
)
"""The modules of Dynamo, AOTAutograd and Inductor that planning uses, in loading order."""

_LOWERING_MODULES = (
    "torch._functorch.partitioners",
    "torch._inductor.fx_passes.joint_graph",
    "torch._inductor.fx_passes.post_grad",
    "torch._inductor.graph",
    "torch._inductor.lowering",
    "torch._inductor.select_algorithm",
    "torch._inductor.scheduler",
    "torch._inductor.codecache",
    "torch._inductor.codegen.cpp",
    "torch._inductor.codegen.wrapper",
    "torch._inductor.debug",
)
"""The modules Inductor imports when it first partitions and lowers a graph (those a release
lacks are passed over): about a second, paid once by a process that loads them before it
forks its captures (`compiled.capture_graphs`), and by each capture that loads them itself."""


def load_compiler() -> None:
    """Import `_COMPILER_MODULES` and `_LOWERING_MODULES`. They use the deprecated
    torch.jit.script_method while loading, which says nothing about the user's config: keep it
    out of their test run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        for name in _COMPILER_MODULES:
            importlib.import_module(name)
        for name in _LOWERING_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)


def compiled_original(function: Any) -> Any:
    """The function a `@torch.compile` decorator wrapped (Dynamo keeps it as
    `_torchdynamo_orig_callable`), to be run eagerly; None when `function` is not one."""
    return getattr(function, "_torchdynamo_orig_callable", None)


def deferred_compile(model: Any = None, **options: Any) -> Any:
    """`torch.compile` while a project's code is imported: `@torch.compile` and
    `@torch.compile(...)` keep the function as it is, behind a wrapper that names it as Dynamo's
    does (`compiled_original` finds it), so that importing the code does not load Dynamo (a
    second of a cached check) for a decorator the simulation undoes anyway."""

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def compiled(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        compiled._torchdynamo_orig_callable = function  # type: ignore[attr-defined]
        return compiled

    return wrap if model is None else wrap(model)


def mark_batch_dynamic(tensor: torch.Tensor) -> None:
    """Have Dynamo trace `tensor`'s first dimension (the batch) as a symbol, not its size."""
    import torch._dynamo

    torch._dynamo.mark_dynamic(tensor, 0)


def shape_guards(example_inputs: Sequence[Any]) -> list[str] | None:
    """What the graphs of `example_inputs` (whose sizes are symbols) assume of those symbols:
    the shape environment's guards (`Eq(1024*s95, 1024*s24)`: the inputs' batches are one;
    `s24 > 16` where the model branches on its batch) and each symbol's range, as expressions;
    None without one. Read after the graphs are lowered: lowering adds guards of its own
    (those of kernels' bodies are left out: `_kernel_bodies_unguarded`)."""
    import sympy  # type: ignore[import-untyped]  # torch's dependency
    from torch._guards import detect_fake_mode

    fake_mode = detect_fake_mode(example_inputs)
    env = getattr(fake_mode, "shape_env", None)
    if env is None:
        return None
    guards = [str(guard.expr) for guard in getattr(env, "guards", [])]
    for symbol, bounds in getattr(env, "var_to_range", {}).items():
        if isinstance(bounds.lower, sympy.Integer):  # not an infinity
            guards.append(f"{symbol} >= {bounds.lower}")
        if isinstance(bounds.upper, sympy.Integer):
            guards.append(f"{symbol} <= {bounds.upper}")
    return guards


def guards_hold(guards: list[str], values: dict[str, int]) -> bool:
    """Whether every guard (`shape_guards`) holds with its symbols set to `values`; False when
    one cannot be read."""
    import sympy
    from torch.utils._sympy import functions

    names: dict[str, Any] = {
        name: value for name, value in vars(functions).items() if isinstance(value, type)
    }
    symbols = {name: sympy.Symbol(name) for name in values}
    for text in guards:
        try:
            expression = sympy.sympify(text, locals={**names, **symbols})
            held = expression.subs({symbols[name]: value for name, value in values.items()})
            if not bool(held):
                return False
        except (TypeError, ValueError, AttributeError, sympy.SympifyError):
            return False
    return True


def reset_dynamo() -> None:
    """Forget what Dynamo compiled and cached."""
    import torch._dynamo

    torch._dynamo.reset()


_INDUCTOR_SETTINGS = {"fx_graph_cache": False, "compile_threads": 1}
"""Inductor's settings for planning: no cache of compiled graphs, one compile thread."""


def _scalar_cpp(config: Any) -> dict[str, Any]:
    """`cpp.simdlen` 1 where this release has it: the C++ kernels' source is generated without
    its vectorised variants: a third of the planning time, and none of the plan
    (vectorisation changes a kernel's body, not the buffers it reads and writes)."""
    return {"cpp.simdlen": 1} if hasattr(getattr(config, "cpp", None), "simdlen") else {}


_FUNCTORCH_SETTINGS = {"force_non_lazy_backward_lowering": True, "enable_autograd_cache": False}
"""AOTAutograd's settings for planning: the backward lowered at once, not when first run
(the setting exists from torch 2.10; before, `trace_joint` lowers the backward graph itself),
and no cache of compiled graphs."""

_DYNAMO_SETTINGS = {"run_gc_after_compile": False}
"""Dynamo's settings for planning: no collection after each compile (`collector.paused`)."""

_NOISY_LOGGERS = ("torch.utils.cpp_extension",)
"""torch's loggers that speak while Inductor plans on a CUDA build without a GPU ("No CUDA
runtime is found, using CUDA_HOME=..."): nothing about the user's config."""

_TRACE_LOGGER = "torch.__trace"
"""torch's structured-trace logger (TORCH_TRACE): its DEBUG records, one per graph and pass,
reached pytest's log capture through the root logger (1,450 lines under a failing config);
they are for its own handler only."""


@contextlib.contextmanager
def planning(cuda_realization: bool = False) -> Iterator[None]:
    """While a compiled step is planned (after `load_compiler`): autograd's engine started
    (`start_autograd`), Dynamo reset before and after, Inductor's FX graph cache off and one
    compile thread, AOTAutograd as `_FUNCTORCH_SETTINGS` (those this release has), torch's
    noisy loggers quiet, the CUDA attention ops' inputs laid out as on CUDA
    (`_cuda_attention_layouts`), the C++ kernels scalar without probing the CPU's vector
    instructions (`_no_isa_probe`), the graphs' traced values kept (`_traced_values_kept`), no
    graph printed for logs (`_graphs_unprinted`) and, with `cuda_realization`, Inductor's
    choice of the values it keeps in buffers made as on CUDA (`_cuda_realization`); Python's
    garbage collector paused (`collector.paused`) and an absent NumPy not sought
    (`_absent_numpy_unsought`)."""
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    start_autograd()  # before Dynamo's fake mode
    reset_dynamo()
    try:
        with (
            inductor_config.patch({**_INDUCTOR_SETTINGS, **_scalar_cpp(inductor_config)}),
            functorch_config.patch(_existing(functorch_config, _FUNCTORCH_SETTINGS)),
            dynamo_config.patch(_existing(dynamo_config, _DYNAMO_SETTINGS)),
            collector.paused(),
            _absent_numpy_unsought(),
            _quiet_torch(),
            _cuda_attention_layouts(),
            _cuda_realization() if cuda_realization else contextlib.nullcontext(),
            _no_isa_probe(inductor_config),
            _kernel_bodies_unguarded(),
            _traced_values_kept(),
            _graphs_unprinted(),
        ):
            yield
    finally:
        reset_dynamo()


@contextlib.contextmanager
def _absent_numpy_unsought() -> Iterator[None]:
    """Where NumPy is not installed, torch's `sym_max` and `sym_min` try to import it at each
    call on plain numbers: about 10,000 searches of `sys.path` in GPT-2's plan (half a
    second). While planning, such an import fails at once (`sys.modules["numpy"]` is None,
    Python's mark of a module known absent); an installed NumPy is left as it is."""
    if "numpy" in sys.modules or importlib.util.find_spec("numpy") is not None:
        yield
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if "numpy" in sys.modules and sys.modules["numpy"] is None:
            del sys.modules["numpy"]


@contextlib.contextmanager
def _kernel_bodies_unguarded() -> Iterator[None]:
    """Keep the choices Inductor makes inside a kernel's body out of the graphs' guards. A
    kernel's body (`SchedulerNode.codegen`: its loops, loads, stores and reductions, after
    fusion, buffer reuse and in-place updates were decided) reads the symbolic batch's
    example value for choices of its own code (the C++ backend sums a reduction of more than
    4096 elements through a helper, and guards `1024*s > 4096` for GPT-2's), which allocate
    nothing; a guard there would send the batches that fail it to a capture of their own. The
    choices are made as before; only their guards are not recorded."""
    from unittest import mock

    from torch._inductor import scheduler
    from torch._inductor.virtualized import V

    node = getattr(scheduler, "SchedulerNode", None)
    original = getattr(node, "codegen", None)
    if original is None:
        yield
        return

    def codegen(self: Any, index_vars: Any) -> None:
        shape_env = getattr(V.graph.sizevars, "shape_env", None)
        unguarded = getattr(shape_env, "suppress_guards", None)
        with unguarded() if unguarded is not None else contextlib.nullcontext():
            original(self, index_vars)

    with mock.patch.object(node, "codegen", codegen):
        yield


@contextlib.contextmanager
def _traced_values_kept() -> Iterator[None]:
    """Inductor runs each graph it is handed once more on fake tensors before lowering it
    (`compile_fx.fake_tensor_prop`, its "additional fake tensor prop"), to give every node its
    value again after turning views into reshapes. The graphs planned here come from
    AOTAutograd's trace on fake tensors a moment before, whose values that pass computes
    again: the wrappers of nanoGPT's graphs (bf16, fp16, fp32, dropout, biases), of a
    project's model with its own attention and of nanochat's were the same to the byte
    without it, and it is half a second of GPT-2's lowering of each graph. While planning, the
    fake mode of a graph's inputs is taken as it is; inputs without one are propagated as
    written."""
    from unittest import mock

    from torch._guards import detect_fake_mode
    from torch._inductor import compile_fx

    propagate = getattr(compile_fx, "fake_tensor_prop", None)
    if not callable(propagate):
        yield
        return

    def kept(gm: Any, example_inputs: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        found = detect_fake_mode(example_inputs)
        return found if found is not None else propagate(gm, example_inputs, *args, **kwargs)

    with mock.patch.object(compile_fx, "fake_tensor_prop", kept):
        yield


@contextlib.contextmanager
def _graphs_unprinted() -> Iterator[None]:
    """AOTAutograd and Inductor print each graph they make as text for their logs and traces
    (`GraphModule.print_readable`: the joint graph, the forward's and backward's, Inductor's
    post-grad graph), whether or not a log or trace is on: a third of a second of GPT-2's
    capture. While planning, a graph prints as nothing: the plan reads the graphs themselves,
    and no log of the user's shows the planner's graphs."""
    from unittest import mock

    if not callable(getattr(torch.fx.GraphModule, "print_readable", None)):
        yield
        return
    with mock.patch.object(torch.fx.GraphModule, "print_readable", lambda self, *a, **k: ""):
        yield


@contextlib.contextmanager
def _no_isa_probe(config: Any) -> Iterator[None]:
    """With `cpp.simdlen` 1 (`_scalar_cpp`), Inductor's choice of vector instructions is
    none whatever the CPU has; it still probes the CPU's by compiling test programs with the
    system's C++ compiler (a second per process). While planning, the probe finds none: the
    same choice, without the compiler."""
    from unittest import mock

    from torch._inductor import cpu_vec_isa

    scalar = getattr(getattr(config, "cpp", None), "simdlen", None) == 1
    if not scalar or not callable(getattr(cpu_vec_isa, "valid_vec_isa_list", None)):
        yield
        return
    with mock.patch.object(cpu_vec_isa, "valid_vec_isa_list", list):
        yield


@contextlib.contextmanager
def _cuda_realization() -> Iterator[None]:
    """Inductor's choices of which intermediate values to keep in memory as on a CUDA device.
    Its IR (`torch/_inductor/ir.py`) asks `is_cpu` in its realization heuristics alone: on the
    CPU a value read more than once whose computation holds a "heavy" op (exp, log, tanh,
    sigmoid ...) is always kept in a buffer, and the op-count and accumulated-reads
    thresholds are the CPU's; on CUDA such a value is recomputed in each reader (nanochat's
    softcap, `15 * tanh(logits / 15)`, would otherwise be an fp32 B x T x vocab buffer the GPU
    never allocates). While planning, `ir.is_cpu` answers as for a CUDA device."""
    from unittest import mock

    from torch._inductor import ir

    if not callable(getattr(ir, "is_cpu", None)):
        yield
        return
    with mock.patch.object(ir, "is_cpu", lambda x: False):
        yield


_CUDA_ATTENTION_OPS = (
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_backward",
)
"""The CUDA attention ops whose inputs Inductor lays out by device (`sdpa_constraint` in
`torch/_inductor/lowering.py`)."""


class _OnCuda:
    """A graph value that reads as a CUDA tensor (`is_cuda`); everything else is its own."""

    is_cuda = True

    def __init__(self, value: Any) -> None:
        self._value = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._value, name)


@contextlib.contextmanager
def _cuda_attention_layouts() -> Iterator[None]:
    """Inductor's layout of the CUDA attention ops' inputs as on a CUDA device. Its
    `sdpa_constraint` asks whether each input's graph value `is_cuda`: on CUDA an aligned
    input is used as it is, so the memory-efficient kernel's bias stays an expanded view of
    one T x S mask; on the CPU every input is made dense, a B x H x T x S copy of the bias in
    each graph. Each of those ops' constraint is wrapped, while planning, to see its inputs'
    values as CUDA tensors. A release without these names is left as it is."""
    from torch._inductor import lowering

    constraints = getattr(lowering, "_maybe_layout_constraints", None)
    ops = [getattr(torch.ops.aten, name).default for name in _CUDA_ATTENTION_OPS]
    wrapped = {}
    if isinstance(constraints, dict):
        wrapped = {op: constraints[op] for op in ops if constraints.get(op) is not None}
    for op, constraint in wrapped.items():
        constraints[op] = _seen_on_cuda(constraint)  # type: ignore[index]
    try:
        yield
    finally:
        for op, constraint in wrapped.items():
            constraints[op] = constraint  # type: ignore[index]


def _seen_on_cuda(constraint: Callable[..., Any]) -> Callable[..., Any]:
    """`constraint`, run with its FX node's tensor arguments' values read as CUDA tensors."""

    def on_cuda(fx_node: Any, *args: Any, **kwargs: Any) -> Any:
        inputs = [a for a in (*fx_node.args, *fx_node.kwargs.values()) if hasattr(a, "meta")]
        values = [(a, a.meta.get("val")) for a in inputs]
        for node, value in values:
            if isinstance(value, torch.Tensor):
                node.meta["val"] = _OnCuda(value)
        try:
            return constraint(fx_node, *args, **kwargs)
        finally:
            for node, value in values:
                if isinstance(value, torch.Tensor):
                    node.meta["val"] = value

    return on_cuda


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Keep `_NOISY_LOGGERS`' warnings and `_TRACE_LOGGER`'s records (left to torch's own
    handler, for TORCH_TRACE users) out of the user's output while planning. torch makes its
    trace logger non-propagating once it sets up its logs, and pytest (9) then attaches its
    log capture to that logger itself at each test: its other handlers are set aside too."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    trace = logging.getLogger(_TRACE_LOGGER)
    propagate = trace.propagate
    foreign = [h for h in trace.handlers if not type(h).__module__.startswith("torch.")]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    trace.propagate = False
    for handler in foreign:
        trace.removeHandler(handler)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        trace.propagate = propagate
        for handler in foreign:
            trace.addHandler(handler)


def _existing(config: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The `settings` this release's `config` module has."""
    return {k: v for k, v in settings.items() if hasattr(config, k)}


def root_cause(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of `kind` in `error`'s chain (causes, contexts, and the exception a
    Dynamo backend raised, which Dynamo wraps as `inner_exception`); None if there is none."""
    seen = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kind):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or getattr(cause, "inner_exception", None) or cause.__context__
    return None


class GraphCompiler(Protocol):
    """What AOTAutograd hands each graph to, with its example inputs (fake tensors)."""

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Any: ...


def trace_joint(
    module: torch.nn.Module,
    example_inputs: list[Any],
    fw_compiler: GraphCompiler,
    bw_compiler: GraphCompiler,
) -> list[str] | None:
    """AOTAutograd's forward and backward graphs of `module` (a Dynamo graph), traced on fake
    tensors with Inductor's decompositions and split by its partitioner, handed to
    `fw_compiler` and `bw_compiler`; the graphs' guards (`shape_guards`) returned. torch 2.8
    and 2.9 lower a static backward only when it first runs: the partitioner's backward graph
    is handed to `bw_compiler` here then.

    With a core to spare, the backward's wrapper is made in a fork while the forward's is made
    here (`_BackwardAhead`); `generate_wrapper` hands it to `bw_compiler` as if made then."""
    from torch._functorch.aot_autograd import aot_module_simplified
    from torch._guards import detect_fake_mode
    from torch._inductor.decomposition import select_decomp_table
    from torch._inductor.virtualized import V

    lowered: list[torch.fx.GraphModule] = []
    ahead: list[_BackwardAhead] = []

    def forward(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Any:
        if partitioned and not ahead and forked.spare_cores() > 0:
            ahead.append(_BackwardAhead(partitioned[-1]))
        return fw_compiler(gm, example_inputs)

    def backward(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Any:
        lowered.append(gm)
        token = _AHEAD.set(ahead[0] if ahead else None)
        try:
            return bw_compiler(gm, example_inputs)
        finally:
            _AHEAD.reset(token)

    # Inductor's joint-graph passes (its random-op seeding for dropout) read the fake mode
    # from V, as compile_fx sets it.
    fake_mode = detect_fake_mode(example_inputs) or FakeTensorMode(allow_non_fake_inputs=True)
    partitioned: list[torch.fx.GraphModule] = []
    try:
        with V.set_fake_mode(fake_mode):
            aot_module_simplified(
                module,  # type: ignore[arg-type]  # typed GraphModule; it takes any Module
                example_inputs,
                fw_compiler=forward,
                bw_compiler=backward,
                partition_fn=_partition_fn(partitioned),
                decompositions=select_decomp_table(),
                keep_inference_input_mutations=True,
            )
            if not lowered and partitioned:  # lowered when first run: torch 2.8, 2.9
                graph = partitioned[-1]
                backward(graph, _placeholder_values(graph))
    finally:
        for each in ahead:
            each.cancel()
    guards = shape_guards(example_inputs)
    if guards is not None and ahead:
        guards += [g for g in ahead[0].guards if g not in guards]
    return guards


def _placeholder_values(gm: torch.fx.GraphModule) -> list[Any]:
    """The values (fake tensors, symbolic sizes) of `gm`'s inputs, as traced."""
    return [n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"]


class _BackwardAhead:
    """The backward graph's wrapper (`generate_wrapper`) made in a fork while the forward's is
    made here, as AOTAutograd would make it after: on a copy of the graph, its inputs as traced,
    without grad or autocast. AOTAutograd hands the backward inputs of other strides where the
    forward's compiled outputs have other strides than traced (Inductor's layout
    optimisation): then the fork's wrapper is not the one asked for, and is not used."""

    def __init__(self, graph: torch.fx.GraphModule) -> None:
        self.inputs = _placeholder_values(graph)
        self.guards: list[str] = []
        self._fork = forked.Forked(lambda: self._lower(graph))

    def _lower(self, graph: torch.fx.GraphModule) -> tuple[str, list[str]]:
        import copy

        with fake_tensor.unset_fake_temporarily():
            copied = copy.deepcopy(graph)
        with torch.no_grad(), torch._C._DisableAutocast():
            wrapper = _lowered_wrapper(copied, self.inputs, backward=True)
        return wrapper, shape_guards(self.inputs) or []

    def wrapper_for(self, example_inputs: Sequence[Any]) -> str | None:
        """The fork's wrapper, if `example_inputs` are the inputs it was made for and it made
        one: waits for it twice as long as it has run (and 30 s at least), then gives up."""
        if len(example_inputs) != len(self.inputs) or any(
            a is not b for a, b in zip(example_inputs, self.inputs, strict=True)
        ):
            return None
        waited = time.monotonic() - self._fork.started
        made = self._fork.result(timeout=max(30.0, 2 * waited))
        if made is None:
            return None
        wrapper, self.guards = made
        return str(wrapper)

    def cancel(self) -> None:
        """Stop the fork if it still runs."""
        self._fork.cancel()


_AHEAD: contextvars.ContextVar[_BackwardAhead | None] = contextvars.ContextVar(
    "backward_ahead", default=None
)
"""The backward being lowered ahead while `bw_compiler` runs (`trace_joint`)."""


def _partition_fn(partitioned: list[torch.fx.GraphModule]) -> Any:
    """Inductor's partitioner (its joint-graph passes, then the min-cut partition), keeping
    the backward graph it makes in `partitioned`. torch 2.9 and later expose the partitioner
    as `compile_fx.partition_fn`; 2.7 and 2.8 define it inside `compile_fx`, so it is made here
    from the same two calls (2.7's joint-graph passes take no keyword)."""
    from torch._inductor import compile_fx

    def inductors(gm: Any, joint_inputs: Any, **kwargs: Any) -> Any:
        from torch._functorch.partitioners import min_cut_rematerialization_partition

        passes = compile_fx._recursive_joint_graph_passes
        if "skip_invoke_subgraph" in inspect.signature(passes).parameters:
            passes(gm, skip_invoke_subgraph=True)
        else:  # torch 2.7
            passes(gm)
        return min_cut_rematerialization_partition(gm, joint_inputs, compiler="inductor", **kwargs)

    base = getattr(compile_fx, "partition_fn", inductors)

    def partition(gm: Any, joint_inputs: Any, **kwargs: Any) -> Any:
        forward, backward = base(gm, joint_inputs, **kwargs)
        partitioned.append(backward)
        return forward, backward

    return partition


class _StopAfterCodegen(Exception):
    pass


def generate_wrapper(
    gm: torch.fx.GraphModule, example_inputs: Sequence[Any], backward: bool
) -> str:
    """The Python wrapper code Inductor's CPU (C++) backend generates for graph `gm` (lowered,
    fused and planned), stopped there: nothing is compiled or run. Empty if none was made.
    A backward's is the one made ahead in a fork where there is one (`trace_joint`)."""
    ahead = _AHEAD.get() if backward else None
    made = ahead.wrapper_for(example_inputs) if ahead is not None else None
    return made if made is not None else _lowered_wrapper(gm, example_inputs, backward)


def _lowered_wrapper(
    gm: torch.fx.GraphModule, example_inputs: Sequence[Any], backward: bool
) -> str:
    """`generate_wrapper`'s work, here."""
    from unittest import mock

    from torch._inductor.compile_fx import compile_fx_inner
    from torch._inductor.graph import GraphLowering

    code: list[str] = []

    def compile_to_module(self: Any) -> Any:
        generated = self.codegen()
        generated = generated[0] if isinstance(generated, tuple) else generated
        code.append(generated.value if hasattr(generated, "value") else str(generated))
        raise _StopAfterCodegen()

    with mock.patch.object(GraphLowering, "compile_to_module", compile_to_module):
        try:
            compile_fx_inner(gm, example_inputs, is_backward=backward)
        except _StopAfterCodegen:
            pass
        except Exception as error:
            if root_cause(error, _StopAfterCodegen) is None:
                raise
    return code[-1] if code else ""


def inductor_extern_kernels() -> Any:
    """Inductor's `extern_kernels` (`mm`, `addmm`, `bmm` ... with `out=`), as wrappers call them."""
    from torch._inductor.select_algorithm import extern_kernels

    return extern_kernels
