"""Live-storage tracking under fake tensors: every storage an op creates becomes an allocation.

A TorchDispatchMode sees each aten op's outputs (forward, backward and optimizer ops alike); a
storage not seen before is an allocation, handed to the caching-allocator model; a weak
reference on the storage reports its release (fake storages have no memory, but they live and die
exactly as the real ones would). The event log is replayed afterwards to name what was live at
the peak.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from pytest_gptcfg.engine.allocator import Block, CachingAllocator


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
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._see(leaf, func)
        return out

    def _see(self, t: torch.Tensor, func: Any) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        nbytes = storage.nbytes()
        known = self.live.get(key)
        if known is not None:
            if nbytes > known.nbytes:
                self._release(key)
            else:
                return
        category = "logits_and_loss" if t.numel() == self.logits_numel else "activations"
        shape = "x".join(map(str, t.shape)) or "scalar"
        description = f"{str(t.dtype).removeprefix('torch.')} {shape} from {func}"
        self.add(key, Allocation(nbytes, category, description))
        self._refs[key] = weakref.ref(storage, lambda _, key=key: self._release(key))

    def add(self, key: int, allocation: Allocation) -> None:
        """Record an allocation under `key` (a storage's `_cdata`, or any unique int)."""
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
        allocation = self.live.get(tensor.untyped_storage()._cdata)
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
