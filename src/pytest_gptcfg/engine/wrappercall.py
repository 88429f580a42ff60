"""Run an Inductor wrapper's `call()` on stand-in buffers: the graph's allocations and frees.

Inductor's generated Python wrapper allocates each buffer (`empty_strided_*`), launches
kernels on them, reuses dead buffers (`bufB = bufA; del bufA  # reuse`), makes views
(`reinterpret_tensor`), calls fallback ops (`torch.ops.aten.X.default`) and `del`s names.
This module compiles only the wrapper's `call` function (found by `ast`, wherever the release
puts it: a module function or a method of its `Runner`) into a namespace of ours and runs it:

- an allocation returns a `Buffer` whose `Storage` reports its own allocation, and its free
  when Python's reference counting drops its last view, exactly when the wrapper's last name
  of it goes (so `del`s, reuses and the end of the call need no reading of their text);
- a view shares its base's `Storage`;
- a kernel (anything the module defines through `async_compile`), an assertion and
  `extern_kernels.X(..., out=buf)` do nothing;
- a fallback op or an extern kernel without `out=` runs on meta tensors of the arguments'
  shapes, and each tensor it returns becomes a new `Storage`, or a view of the argument its
  schema says it aliases.

Nothing here reads the wrapper's text line by line: only Python's grammar, the names the
module binds at its top level, and the ops' own schemas and meta kernels. A name the call uses
that is none of these is recorded in `WrapperRun.unknown` and stands for a no-op; if the call
binds its result, `run_call` refuses the plan (`WrapperUnreadable`), since it may allocate.
"""

from __future__ import annotations

import ast
import builtins
import functools
import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from pytest_gptcfg.engine import collector, torchapi


class WrapperUnreadable(Exception):
    """The wrapper's call() could not be run as a plan; the message says why."""


@dataclass
class TensorMeta:
    """Shape, strides, dtype and storage offset of one tensor the wrapper handles."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    offset: int = 0


def storage_bytes(shape: tuple[int, ...], stride: tuple[int, ...], itemsize: int) -> int:
    """Bytes a tensor of `shape` and `stride` spans from its first element (0 if empty)."""
    if any(s == 0 for s in shape):
        return 0
    return (1 + sum((s - 1) * st for s, st in zip(shape, stride, strict=True))) * itemsize


@dataclass
class WrapperRun:
    """What one run of `call()` did: events in order, and the storages of what it returned.

    Events: ('alloc', sid, nbytes, dtype) for a storage the graph allocates, ('free', sid)
    when its last reference goes, ('release', sid) when an input's storage loses the graph's
    last reference (the caller decides whether that frees anything).
    """

    events: list[list[Any]] = field(default_factory=list)
    returned: list[str | None] = field(default_factory=list)
    returned_meta: list[TensorMeta | None] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)
    recording: bool = True

    def record(self, event: list[Any]) -> None:
        if self.recording:
            self.events.append(event)


class Storage:
    """One allocation; reports its free when the last `Buffer` on it is gone."""

    __slots__ = ("__weakref__", "local", "nbytes", "run", "sid")

    def __init__(self, run: WrapperRun, sid: str, nbytes: int, local: bool) -> None:
        self.run, self.sid, self.nbytes, self.local = run, sid, nbytes, local

    def __del__(self) -> None:
        self.run.record(["free" if self.local else "release", self.sid])


class Buffer:
    """A tensor as the wrapper sees it: a storage and the view's metadata."""

    __slots__ = ("meta", "storage")

    def __init__(self, storage: Storage, meta: TensorMeta) -> None:
        self.storage, self.meta = storage, meta

    def size(self, dim: int | None = None) -> Any:
        """The view's shape (a wrapper of a symbolic batch reads sizes off its inputs)."""
        return torch.Size(self.meta.shape) if dim is None else self.meta.shape[dim]

    def stride(self, dim: int | None = None) -> Any:
        """The view's strides."""
        return self.meta.stride if dim is None else self.meta.stride[dim]

    def as_meta(self) -> torch.Tensor:
        """A meta tensor with this view's shape, strides and dtype."""
        m = self.meta
        return torch.empty_strided(m.shape, m.stride, dtype=m.dtype, device="meta")


class _Unknown:
    """What an unrecognised name stands for, and what calling it gives: a no-op."""

    def __init__(self, run: WrapperRun, name: str) -> None:
        self._run, self._name = run, name

    def __call__(self, *args: Any, **kwargs: Any) -> _Unknown:
        self._run.unknown.add(self._name)
        return self

    def __getattr__(self, attr: str) -> _Unknown:
        return _Unknown(self._run, f"{self._name}.{attr}")

    def __enter__(self) -> _Unknown:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class _Kernel:
    """A generated kernel: calling it (or its `.run`, as Triton's are launched) does nothing."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, attr: str) -> Any:
        return self


_FILENAME = "<inductor wrapper>"
_REAL_MODULES = frozenset({"math", "cmath", "random", "os", "tempfile", "ctypes"})
"""Standard modules the wrapper imports: their names stand for themselves."""


class _Names:
    """The stand-ins for the names a wrapper's call() uses, and the allocation counter."""

    def __init__(self, run: WrapperRun, prefix: str, targets: dict[int, str]) -> None:
        self.run = run
        self.prefix = prefix
        self.targets = targets  # line number -> the name an allocation is bound to
        self.count = 0
        self.per_name: dict[str, int] = {}

    def _sid(self) -> str:
        """The storage id of a new allocation: the name the wrapper's line binds (a second
        storage made on the same line, a multi-output op's, gets `_1`, `_2`, ...)."""
        self.count += 1
        frame: Any = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != _FILENAME:
            frame = frame.f_back
        name = self.targets.get(frame.f_lineno) if frame is not None else None
        if name is None:
            return f"{self.prefix}alloc{self.count}"
        seen = self.per_name.get(name, 0)
        self.per_name[name] = seen + 1
        return f"{self.prefix}{name}" + (f"_{seen}" if seen else "")

    def new(self, meta: TensorMeta) -> Buffer:
        """A buffer of a storage of its own, allocated now."""
        nbytes = storage_bytes(meta.shape, meta.stride, meta.dtype.itemsize)
        storage = Storage(self.run, self._sid(), nbytes, local=True)
        self.run.record(["alloc", storage.sid, nbytes, str(meta.dtype).removeprefix("torch.")])
        return Buffer(storage, meta)

    def empty_strided(self, size: Any, stride: Any, dtype: Any = None, *rest: Any, **kw: Any):
        dtype = dtype if isinstance(dtype, torch.dtype) else kw.get("dtype", torch.float32)
        return self.new(TensorMeta(tuple(map(int, size)), tuple(map(int, stride)), dtype))

    def reinterpret_tensor(self, base: Any, size: Any, stride: Any, offset: Any = 0) -> Buffer:
        if not isinstance(base, Buffer):
            raise WrapperUnreadable(f"a view of something not allocated: {type(base).__name__}")
        meta = TensorMeta(tuple(map(int, size)), tuple(map(int, stride)), base.meta.dtype,
                          base.meta.offset + int(offset))  # fmt: skip
        return Buffer(base.storage, meta)

    def alloc_from_pool(self, pool: Any, offset: Any, dtype: Any, size: Any, stride: Any):
        base = self.reinterpret_tensor(pool, size, stride, offset)
        base.meta.dtype = dtype
        return base

    def op(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` (an op or an extern kernel) run on meta tensors; its outputs as buffers."""

        def run(*args: Any, **kwargs: Any) -> Any:
            out = kwargs.get("out")
            if isinstance(out, Buffer):
                return out  # writes into a buffer the wrapper allocated
            metas, kwmetas = _to_meta(args), _to_meta(kwargs)
            result = fn(*metas, **kwmetas)
            aliases = _alias_map(fn, args, kwargs)
            return self._wrap(result, aliases, itertools.count())

        return run

    def _wrap(self, value: Any, aliases: dict[int, Buffer], index: Iterator[int]) -> Any:
        if isinstance(value, torch.Tensor):
            i = next(index)
            meta = TensorMeta(tuple(value.shape), tuple(value.stride()), value.dtype,
                              int(value.storage_offset()))  # fmt: skip
            if i in aliases:
                return Buffer(aliases[i].storage, meta)
            return self.new(meta)
        if isinstance(value, (tuple, list)):
            return type(value)(self._wrap(v, aliases, index) for v in value)
        return value


def _to_meta(value: Any) -> Any:
    if isinstance(value, Buffer):
        return value.as_meta()
    if isinstance(value, torch.device):
        return torch.device("meta")
    if isinstance(value, _Unknown):
        raise WrapperUnreadable(f"an argument comes from an unrecognised name: {value._name}")
    if isinstance(value, (tuple, list)):
        return type(value)(_to_meta(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


def _alias_map(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[int, Buffer]:
    """Which of `fn`'s tensor outputs alias which argument, from its schema (none if it has
    none: an extern kernel without `out=` returns new tensors)."""
    schema = torchapi.op_schema(fn)
    if schema is None:
        return {}
    by_set: dict[str, Buffer] = {}
    for i, arg in enumerate(schema.arguments):
        value = args[i] if i < len(args) else kwargs.get(arg.name)
        if arg.alias_info is not None and isinstance(value, Buffer):
            for name in arg.alias_info.before_set:
                by_set[name] = value
    aliases = {}
    for i, ret in enumerate(schema.returns):
        if ret.alias_info is not None:
            for name in ret.alias_info.before_set:
                if name in by_set:
                    aliases[i] = by_set[name]
    return aliases


class _OpNamespace:
    """`torch.ops`-like access (`aten.mm.default`) whose leaves run through `_Names.op`."""

    def __init__(self, names: _Names, target: Any) -> None:
        self._names, self._target = names, target

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        is_op = callable(value) and not isinstance(value, type)
        if is_op and torchapi.op_schema(value) is not None:
            return self._names.op(value)
        if isinstance(value, (torch.dtype, torch.device, int, float, str)):
            return value
        return _OpNamespace(self._names, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._names.op(self._target)(*args, **kwargs)


class _TorchProxy:
    """`torch` inside the call: `torch.ops` through `_Names.op`, dtypes as they are, and
    anything else that is callable as an unrecognised name (a no-op that is recorded)."""

    def __init__(self, names: _Names, run: WrapperRun) -> None:
        self._names, self._run = names, run

    def __getattr__(self, attr: str) -> Any:
        if attr == "ops":
            return _OpNamespace(self._names, torch.ops)
        if attr.startswith("empty_strided"):
            return self._names.empty_strided
        value = getattr(torch, attr, None)
        if isinstance(value, torch.dtype) or value is torch.device:
            return value
        return _Unknown(self._run, f"torch.{attr}")


def _module_bindings(tree: ast.Module) -> dict[str, str]:
    """Each top-level name of the wrapper module and what binds it, as source text
    (`empty_strided_cpu` -> `torch._C._dynamo.guards._empty_strided_cpu`; a kernel ->
    `async_compile.cpp_pybinding(...)`; an import -> its module and name)."""
    bound: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            text = ast.unparse(node.value)
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = text
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound[node.name] = f"def {node.name}"
    return bound


def _find_call(tree: ast.Module) -> ast.FunctionDef:
    """The `call` function: at the top level, or a method of a class (2.8 and later put it in
    `Runner`); its last positional parameter receives the inputs."""
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "call"]
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found += [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "call"]
    if len(found) != 1:
        raise WrapperUnreadable(f"the wrapper has {len(found)} call() functions, not one")
    return found[0]


def _classify(name: str, source: str, names: _Names, run: WrapperRun) -> Any:
    """The stand-in for module-level `name`, bound at the top level by `source`."""
    tail = source.split("(", 1)[0].rsplit(".", 1)[-1]
    if source.startswith("async_compile.") or source.startswith("def "):
        return _Kernel()  # a kernel (compiled, never run here) or a helper of the wrapper's
    head = source.split(".", 1)[0]
    if head in _REAL_MODULES:
        return _dotted(source)
    if source == "torch.device":
        return torch.device
    if "empty_strided" in tail or name.startswith("empty_strided"):
        return names.empty_strided
    if tail == "_reinterpret_tensor" or name == "reinterpret_tensor":
        return names.reinterpret_tensor
    if tail == "_alloc_from_pool" or name == "alloc_from_pool":
        return names.alloc_from_pool
    if tail.startswith("assert_") or name.startswith("assert_"):
        return _noop
    if source.startswith("torch.ops"):
        return _OpNamespace(names, _dotted(source))
    if name == "extern_kernels":
        return _OpNamespace(names, torchapi.inductor_extern_kernels())
    return _Unknown(run, name)


def _dotted(source: str) -> Any:
    """The object a dotted name (`torch.ops.aten`, `math.inf`) names."""
    import importlib

    parts = source.split(".")
    value: Any = importlib.import_module(parts[0])
    for part in parts[1:]:
        value = getattr(value, part)
    return value


@dataclass(frozen=True)
class _Reading:
    """What running a wrapper's call() needs of its text, read once per wrapper (`_read`)."""

    code: Any
    """The module holding call() alone, compiled."""
    takes_self: bool
    """call() is a method (`Runner.call(self, args)`, torch 2.8 and later)."""
    targets: dict[int, str]
    """Line number -> the single name an assignment in call() binds (for storage ids)."""
    bindings: tuple[tuple[str, str], ...]
    """The module-level names call() uses, with what binds them (`_module_bindings`)."""
    bound_calls: tuple[str, ...]
    """The functions (as source text) whose results call() binds to a name."""


@functools.lru_cache(maxsize=16)
def _read(wrapper: str) -> _Reading:
    """`wrapper` parsed, call() found, compiled and walked once (a batch search runs the same
    wrappers at each batch it probes), with the collector paused: the tree's nodes (15,000
    and 24,000 for GPT-2's forward and backward) can set off a collection of the whole
    process."""
    with collector.paused():
        try:
            tree = ast.parse(wrapper)
        except SyntaxError as error:
            raise WrapperUnreadable(f"the wrapper code does not parse: {error}") from None
        call = _find_call(tree)
        targets: dict[int, str] = {}
        bound_calls: list[str] = []
        used: set[str] = set()
        for node in ast.walk(call):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Assign):
                if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    targets[node.lineno] = node.targets[0].id
                if isinstance(node.value, ast.Call):
                    bound_calls.append(ast.unparse(node.value.func))
        bindings = _module_bindings(tree)
        module = ast.Module(body=[call], type_ignores=[])
        return _Reading(
            code=compile(module, _FILENAME, "exec"),
            takes_self=len(call.args.args) == 2,
            targets=targets,
            bindings=tuple((n, bindings[n]) for n in sorted(used & bindings.keys())),
            bound_calls=tuple(bound_calls),
        )


def run_call(wrapper: str, run: WrapperRun, prefix: str, args: list[Buffer | int]) -> WrapperRun:
    """Run `wrapper`'s call() on `args` and record what it allocates and frees into `run`.

    `args` (buffers, and sizes where the graph takes some) is handed over: call() clears it, as
    Inductor's does, and the caller keeps no other
    reference to its buffers except those it means to hold (a tensor the caller still owns).
    New storages are named `prefix` + the wrapper's buffer name. Events are recorded until
    call() has returned (the frees of its local names at the return included); the returned
    values' storages are listed in order, and dropping them here records nothing.
    """
    reading = _read(wrapper)
    names = _Names(run, prefix, reading.targets)
    namespace: dict[str, Any] = {"__builtins__": builtins, "torch": _TorchProxy(names, run)}
    for name, source in reading.bindings:
        if name != "torch":
            namespace[name] = _classify(name, source, names, run)
    exec(reading.code, namespace)
    function = namespace["call"]
    try:
        result = function(None, args) if reading.takes_self else function(args)
    except WrapperUnreadable:
        raise
    except Exception as error:
        raise WrapperUnreadable(
            f"running the wrapper's call() failed: {type(error).__name__}: {error}"
        ) from None
    finally:
        run.recording = False
    bad = [called for called in reading.bound_calls if called in run.unknown]
    if bad:
        raise WrapperUnreadable(f"the wrapper binds the result of an unrecognised call: {bad[0]}")
    items = result if isinstance(result, (tuple, list)) else (result,)
    for item in items:
        is_buffer = isinstance(item, Buffer)
        run.returned.append(item.storage.sid if is_buffer else None)
        run.returned_meta.append(item.meta if is_buffer else None)
    return run
