"""Live-storage tracking under fake tensors: every storage an op creates becomes an allocation.

A TorchDispatchMode sees each aten op's outputs (forward, backward and optimizer ops alike); a
storage not seen before is an allocation, handed to the caching-allocator model; a weak
reference on the storage reports its release (fake storages have no memory, but they live and die
exactly as the real ones would). The event log is replayed afterwards to name what was live at
the peak.

`StorageTracker` is a mode of its own, which can be stacked above a `FakeTensorMode` (the
plain form, which the tests hold the fast one to). `StorageTracker.fake_mode()`, which the
eager step, the compiled step and the evaluation use, is the fake mode doing the same tracking
itself (`TrackingFakeMode`): it sees the same ops, the outermost ones (not those a decomposition
runs inside the fake mode), each dispatched through one mode instead of two. It also answers
metadata queries (`prim.device`, most of what the autograd engine dispatches) before the fake
mode's dispatch, takes view ops directly on the fake tensor's meta storage, and makes the new
tensors of an op called again with the same arguments' metadata as the fake mode's cache makes
them, under a cheaper key (a transformer's layers repeat the same ops on the same shapes).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard

import torch

from pytest_gptcfg.engine import collector
from pytest_gptcfg.engine.allocator import Block, CachingAllocator
from pytest_gptcfg.engine.torchapi import (
    META_HANDLERS,
    FakeTensor,
    PlainDispatchFakeMode,
    TorchDispatchMode,
    default_device,
    in_kernel_invocation_manager,
    op_schema,
    storage_key,
    tree_leaves,
)


@dataclass
class Allocation:
    """One storage: its bytes, what it is, and its block in the allocator model.

    `size` is the block's size when handed out, as `memory_allocated` counts it.
    """

    nbytes: int
    category: str
    description: str
    block: Block | None = None
    size: int = 0


class StorageTracker(TorchDispatchMode):
    """Feeds storage creation and release to `allocator`, remembering when allocation peaked.

    A storage of `logits_numel` elements (B x T x vocab: logits, log-probabilities and their
    gradients) is labelled 'logits_and_loss', others 'activations' until relabelled.
    """

    def __init__(self, allocator: CachingAllocator, logits_numel: int) -> None:
        super().__init__()
        self.allocator = allocator
        self.logits_numel = logits_numel
        self.live: dict[int, Allocation] = {}
        self._refs: dict[int, weakref.ref[torch.UntypedStorage]] = {}
        self._events: list[tuple[bool, Allocation]] = []
        self._peak_event = 0
        self._peak_allocated = -1

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        self.see_outputs(out, func)
        return out

    @contextlib.contextmanager
    def fake_mode(self) -> Iterator[TrackingFakeMode]:
        """A `FakeTensorMode` that does this tracking itself, entered: `with tracker.fake_mode():`
        sees what `with FakeTensorMode(), tracker:` sees, faster, with Python's garbage
        collector paused meanwhile (`collector.paused`)."""
        with collector.paused(), TrackingFakeMode(self) as mode:
            yield mode

    def see_outputs(self, out: Any, func: Any) -> None:
        """Record the storages of the tensors among `out`, the outputs of op `func`."""
        if isinstance(out, torch.Tensor):
            self._see(out, func)
        elif not isinstance(out, _NOT_TENSORS):
            for leaf in tree_leaves(out):
                if isinstance(leaf, torch.Tensor):
                    self._see(leaf, func)

    def _see(self, t: torch.Tensor, func: Any) -> None:
        storage = t.untyped_storage()
        key = storage_key(storage)
        nbytes = storage.nbytes()
        known = self.live.get(key)
        if known is not None:
            if nbytes > known.nbytes:
                self._release(key)
            else:
                return
        category = self.category(t)
        shape = "x".join(map(str, t.shape)) or "scalar"
        description = f"{str(t.dtype).removeprefix('torch.')} {shape} from {func}"
        self.add(key, Allocation(nbytes, category, description))
        self._refs[key] = weakref.ref(storage, lambda _: self._release(key))

    def category(self, t: torch.Tensor) -> str:
        """The breakdown key of a new storage, by the tensor an op made on it."""
        return "logits_and_loss" if t.numel() == self.logits_numel else "activations"

    def add(self, key: int, allocation: Allocation) -> None:
        """Record an allocation under `key` (a storage's `storage_key`, or any unique int)."""
        allocation.block = self.allocator.malloc(allocation.nbytes)
        allocation.size = allocation.block.size if allocation.block is not None else 0
        self.live[key] = allocation
        self._events.append((True, allocation))
        if self.allocator.allocated > self._peak_allocated:
            self._peak_allocated = self.allocator.allocated
            self._peak_event = len(self._events)

    def release(self, key: int) -> None:
        """Record the release of the allocation `add` recorded under `key`."""
        self._release(key)

    def _release(self, key: int) -> None:
        allocation = self.live.pop(key, None)
        self._refs.pop(key, None)
        if allocation is not None:
            self.allocator.free(allocation.block)
            self._events.append((False, allocation))

    def label(self, tensor: torch.Tensor, category: str, description: str) -> None:
        """Relabel the live storage behind `tensor` (a parameter, a gradient, a state tensor, an
        autocast weight copy)."""
        allocation = self.live.get(storage_key(tensor.untyped_storage()))
        if allocation is not None:
            allocation.category = category
            allocation.description = description

    @property
    def live_bytes(self) -> int:
        """Bytes of the storages alive now (block sizes)."""
        return sum(a.size for a in self.live.values())

    def at_peak(self) -> list[Allocation]:
        """The allocations alive when allocated memory peaked, largest first."""
        alive: dict[int, Allocation] = {}
        for created, allocation in self._events[: self._peak_event]:
            if created:
                alive[id(allocation)] = allocation
            else:
                alive.pop(id(allocation), None)
        return sorted(alive.values(), key=lambda a: a.size, reverse=True)


def is_fake(t: object) -> bool:
    """Whether `t` is a fake tensor (the simulation's), not a real CPU tensor."""
    return isinstance(t, FakeTensor)


_READ_VALUE = torch.ops.aten._local_scalar_dense.default  # `Tensor.item()`, `bool(tensor)`


def _unknown_value(t: Any) -> bool:
    """Whether `t` is a fake tensor whose value the fake mode does not know (it knows those of
    small tensors made from constants)."""
    return isinstance(t, FakeTensor) and t.constant is None


def _zero(t: torch.Tensor) -> bool | int | float | complex:
    """Zero as `t.item()` gives it for `t`'s dtype."""
    if t.dtype is torch.bool:
        return False
    if t.is_complex():
        return 0j
    return 0.0 if t.is_floating_point() else 0


_NOT_TENSORS = (type(None), bool, int, float, str, torch.device, torch.dtype)
"""Outputs of ops that hold no tensor (checked before walking an output as a pytree)."""

_aten = torch.ops.aten
VIEW_OPS = frozenset(
    {
        _aten.view.default, _aten._unsafe_view.default, _aten.t.default, _aten.transpose.int,
        _aten.detach.default, _aten.alias.default, _aten.expand.default, _aten.permute.default,
        _aten.split.Tensor, _aten.split_with_sizes.default, _aten.slice.Tensor,
        _aten.select.int, _aten.unsqueeze.default, _aten.squeeze.dim, _aten.unbind.int,
    }
)  # fmt: skip
"""Ops whose outputs are new views of their first argument's storage, which `TrackingFakeMode`
runs directly on the fake tensor's meta storage (see `TrackingFakeMode._view`)."""


class TrackingFakeMode(PlainDispatchFakeMode):
    """A `FakeTensorMode` that reports the outputs of each outermost op to a `StorageTracker`.

    Ops the fake mode runs inside an op (a decomposition re-enters the mode) are not reported,
    as a `StorageTracker` stacked above the fake mode does not see them either.
    """

    def __init__(self, tracker: StorageTracker) -> None:
        super().__init__()
        self.tracker = tracker
        self._depth = 0
        self._made: dict[tuple[Any, ...], tuple[Any, list[_Made]] | None] = {}
        self._values_read_as_zero = False

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """While the model is built, a read of a value no fake tensor holds (`.item()`, `if
        mask.any():`) gives zero instead of failing. Initial weights are never known in a
        simulation and their values do not change the memory, but an initialisation may read
        them: `nn.init.trunc_normal_` samples until no weight is out of range (torch 2.13 does),
        and now accepts its first draw. The step itself still fails on such a read (a router
        that dispatches on values cannot be simulated)."""
        self._values_read_as_zero = True
        try:
            yield
        finally:
            self._values_read_as_zero = False

    # torch passes a tuple and a dict (or None); FakeTensorMode's stub types them wider
    def __torch_dispatch__(  # type: ignore[override]
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        handler = META_HANDLERS.get(func)
        if handler is not None:  # what FakeTensorMode.dispatch does first; no storage made
            return handler(args)
        if func is _READ_VALUE and self._values_read_as_zero and _unknown_value(args[0]):
            return _zero(args[0])
        kwargs = kwargs or {}
        if self._depth:  # inside an op: the fake mode's own business
            return self.dispatch(func, types, args, kwargs)
        key = out = None
        if func in VIEW_OPS:
            out = self._view(func, args, kwargs)
        elif _makes_new_tensors(func):
            key = self._key(func, args, kwargs)
            entry = self._made.get(key) if key is not None else None
            if entry:
                out = self._remade(entry)
        if out is None:
            self._depth = 1
            try:
                out = self.dispatch(func, types, args, kwargs)
            finally:
                self._depth = 0
            if key is not None and key not in self._made:
                self._made[key] = self._entry(out, args, kwargs)
        self.tracker.see_outputs(out, func)
        return out

    def _own(self, t: Any) -> TypeGuard[FakeTensor]:
        """Whether `t` is a plain fake tensor of this mode with no constant value: the only
        tensors `_view`, `_key` and `_entry` take shortcuts for."""
        return type(t) is FakeTensor and t.fake_mode is self and t.constant is None

    def _static(self) -> bool:
        """Whether shapes are static and no real tensors run beside the fake ones."""
        return self.shape_env is None and not getattr(self, "propagate_real_tensors", False)

    def _view(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The views `func` makes of a plain fake tensor, or None to dispatch it as usual.

        The fake mode computes a view's metadata by running the op on meta tensors (then caches
        it, keyed on all of its arguments' metadata, and rebuilds a tensor on that storage for
        each later call); running the meta kernel on the fake tensor's own meta storage gives
        the same view directly, at a fraction of the cost. Only plain dense fake tensors of this
        mode with static shapes and no constant value are handled; anything else is dispatched.
        """
        x = args[0] if args else None
        if not self._own(x) or not self._static() or self.in_kernel_invocation:
            return None
        device = x.fake_device
        with in_kernel_invocation_manager(self):
            if x.layout is not torch.strided:
                return None
            out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            return FakeTensor(self, out, device)
        return [FakeTensor(self, o, device) for o in out]

    # An op whose outputs are new tensors is made again from the outputs of its first call with
    # the same arguments, as the fake mode's own cache does it (`empty_strided` on meta, wrapped
    # as a FakeTensor), under a key that is cheaper to compute: the fake mode's cache keys each
    # call on a full metadata record of every tensor argument, two thirds of a cache hit's time
    # in a profile of GPT-2's step.

    def _key(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """What `func`'s outputs depend on: the state the fake mode's cache key holds, each fake
        tensor argument's metadata and the other arguments' values; None if not keyable."""
        if not self._static():
            return None
        try:
            key = (
                func,
                torch.get_default_dtype(),
                default_device(),
                torch.is_inference_mode_enabled(),
                self._keyed(args),
                self._keyed(tuple(kwargs.items())),
            )
            hash(key)
        except (_Unkeyable, TypeError):
            return None
        return key

    def _keyed(self, value: Any) -> Any:
        if type(value) is FakeTensor:
            if not self._own(value):
                raise _Unkeyable
            return (
                value.dtype,
                tuple(value.shape),
                value.stride(),
                value.storage_offset(),
                value.fake_device,
                value.layout,
                value.requires_grad,
                value.is_conj(),
                value.is_neg(),
                value.is_inference(),
                value.untyped_storage().nbytes(),
            )
        if isinstance(value, torch.Tensor):
            raise _Unkeyable
        if isinstance(value, (list, tuple)):
            return (type(value), tuple(self._keyed(v) for v in value))
        return (type(value), value)

    def _entry(self, out: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """How to make `out` again, or None when remaking it would not give the same tensors:
        each output a plain fake tensor of this mode on a storage of its own (no input's, no
        other output's) that `empty_strided` makes alike, to the storage's size."""
        outs = [out] if isinstance(out, torch.Tensor) else out
        if not isinstance(outs, (list, tuple)) or not all(type(o) is FakeTensor for o in outs):
            return None
        made = [_Made(tuple(o.shape), o.stride(), o.dtype, o.fake_device) for o in outs]
        taken = {storage_key(t.untyped_storage()) for t in _tensors((args, kwargs))}
        with in_kernel_invocation_manager(self):
            again = [m.empty() for m in made]
        for o, a in zip(outs, again, strict=True):
            storage = o.untyped_storage()
            if (
                not self._own(o)
                or storage_key(storage) in taken
                or (o.layout, o.storage_offset(), storage.nbytes(), o.requires_grad)
                != (a.layout, a.storage_offset(), a.untyped_storage().nbytes(), a.requires_grad)
                or (o.is_conj(), o.is_neg(), o.is_inference())
                != (a.is_conj(), a.is_neg(), a.is_inference())
            ):
                return None
            taken.add(storage_key(storage))
        # several outputs come back as a tuple or a list (as the fake mode's cache gives them)
        kind = None if isinstance(out, torch.Tensor) else list if isinstance(out, list) else tuple
        return (kind, made)

    def _remade(self, entry: tuple[Any, list[_Made]]) -> Any:
        kind, made = entry
        with in_kernel_invocation_manager(self):
            metas = [m.empty() for m in made]
        outs = [FakeTensor(self, t, m.device) for t, m in zip(metas, made, strict=True)]
        return outs[0] if kind is None else kind(outs)


@dataclass(frozen=True)
class _Made:
    """An output to make again: a new tensor of this shape, stride, dtype and fake device."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device

    def empty(self) -> torch.Tensor:
        """The meta tensor behind it (call inside the fake mode's kernel invocation)."""
        return torch.empty_strided(self.shape, self.stride, dtype=self.dtype, device="meta")


class _Unkeyable(Exception):
    """An argument that `TrackingFakeMode._key` cannot key on (not a fake tensor of its own)."""


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return _tensors(list(value.values()))
    return []


_NEW_TENSORS: dict[Any, bool] = {}
_DATA_DEPENDENT = tuple(
    tag
    for tag in (getattr(torch.Tag, "dynamic_output_shape", None),
                getattr(torch.Tag, "data_dependent_output", None))
    if tag is not None
)  # fmt: skip


def _makes_new_tensors(func: Any) -> bool:
    """Whether `func`, by its schema, returns only new tensors: an aten op that mutates and
    aliases nothing, returns tensors (or lists of them), and whose output shapes do not depend
    on tensor values."""
    known = _NEW_TENSORS.get(func)
    if known is None:
        schema = op_schema(func)
        known = (
            schema is not None
            and getattr(func, "namespace", None) == "aten"
            and not schema.is_mutable
            and len(schema.returns) > 0
            and all(
                r.alias_info is None and str(r.type) in ("Tensor", "List[Tensor]")
                for r in schema.returns
            )
            and not any(tag in func.tags for tag in _DATA_DEPENDENT)
        )
        _NEW_TENSORS[func] = known
    return known
