"""A model of PyTorch's CUDA caching allocator: from a stream of allocations to reserved memory.

Follows `c10/cuda/CUDACachingAllocator.cpp` with its default settings (no
`PYTORCH_CUDA_ALLOC_CONF`, one stream); the sizes are `gptlint.facts.cudablocks`' rules:

- requests are rounded up to multiples of 512 bytes (`round_size`, `kMinBlockSize`);
- blocks of <= 1 MiB (`kSmallSize`) come from the small pool, whose segments are 2 MiB
  (`kSmallBuffer`); larger ones from the large pool, whose segments are 20 MiB (`kLargeBuffer`)
  for requests under 10 MiB (`kMinLargeAlloc`) and the request rounded up to 2 MiB
  (`kRoundLarge`) above (`get_allocation_size`);
- a request takes the smallest cached free block that is large enough (best fit,
  `get_free_block`), splitting it when the rest is >= 512 bytes (small pool) or > 1 MiB (large
  pool) (`should_split`); freed blocks merge with free neighbours of the same segment
  (`free_block` / `try_merge_blocks`);
- segments are never returned during the step; only when a new segment would pass the memory
  limit are fully free cached segments released before trying again (`release_cached_blocks`),
  and if it still does not fit the request is an out-of-memory error.

`allocated` counts block sizes, as `torch.cuda.memory_allocated` does; `reserved` counts segment
sizes, as `torch.cuda.memory_reserved` does. An optional `recorder` (a `snapshot.SnapshotRecorder`)
receives the events CUDA's own allocator traces, with made-up but consistent addresses: each
segment gets a base that is never reused, and a block's address is its base plus its offset.
"""

from __future__ import annotations

import bisect
import itertools

from gptlint.facts.cudablocks import SMALL_SIZE, allocation_size, round_size, should_split
from pytest_gptcfg.engine.snapshot import SnapshotRecorder, python_frames

ADDRESS_ORIGIN = 0x7F0000000000


class Block:
    """A piece of a segment, free or handed out."""

    __slots__ = ("free", "next", "offset", "prev", "segment", "size", "small")

    def __init__(self, segment: int, offset: int, size: int, small: bool) -> None:
        self.segment = segment
        self.offset = offset
        self.size = size
        self.small = small
        self.free = True
        self.prev: Block | None = None
        self.next: Block | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        """Order in a pool's free list: size first, then position."""
        return (self.size, self.segment, self.offset)


class CachingAllocator:
    """Allocation bookkeeping of one device; `limit` is the per-process cap in bytes, if any."""

    def __init__(self, limit: int | None = None, recorder: SnapshotRecorder | None = None) -> None:
        self.limit = limit
        self.recorder = recorder
        self._bases: dict[int, int] = {}
        self._next_base = ADDRESS_ORIGIN
        self.allocated = 0
        self.reserved = 0
        self.peak_allocated = 0
        self.peak_reserved = 0
        self.oom = False
        self._segments: dict[int, int] = {}
        self._free: dict[bool, list[tuple[int, int, int]]] = {True: [], False: []}
        self._by_key: dict[tuple[int, int, int], Block] = {}
        self._ids = itertools.count()

    def malloc(self, size: int) -> Block | None:
        """Hand out a block for `size` bytes; None for 0 bytes, which need no memory."""
        if size == 0:
            return None
        requested, size = size, round_size(size)
        small = size <= SMALL_SIZE
        block = self._best_fit(size, small) or self._new_segment(size, small)
        self._remove_free(block)
        rest = block.size - size
        if should_split(rest, small):
            tail = Block(block.segment, block.offset + size, rest, small)
            tail.prev, tail.next = block, block.next
            if block.next is not None:
                block.next.prev = tail
            block.next = tail
            block.size = size
            self._add_free(tail)
        block.free = False
        self.allocated += block.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        if self.recorder is not None:
            self.recorder.alloc(self._address(block), block.size, requested, _frames())
        return block

    def free(self, block: Block | None) -> None:
        """Return `block` to its pool, merging it with free neighbours."""
        if block is None:
            return
        if self.recorder is not None:
            self.recorder.free(self._address(block))
        self.allocated -= block.size
        block.free = True
        for other in (block.prev, block.next):
            if other is not None and other.free:
                self._remove_free(other)
                first, second = (other, block) if other is block.prev else (block, other)
                first.size += second.size
                first.next = second.next
                if second.next is not None:
                    second.next.prev = first
                block = first
        self._add_free(block)

    def _best_fit(self, size: int, small: bool) -> Block | None:
        pool = self._free[small]
        i = bisect.bisect_left(pool, (size, -1, -1))
        return self._by_key[pool[i]] if i < len(pool) else None

    def _new_segment(self, size: int, small: bool) -> Block:
        alloc = allocation_size(size)
        if self.limit is not None and self.reserved + alloc > self.limit:
            self._release_cached()
            if self.reserved + alloc > self.limit:
                self.oom = True
                if self.recorder is not None:
                    self.recorder.oom(size, max(self.limit - self.reserved, 0), _frames())
        segment = next(self._ids)
        self._segments[segment] = alloc
        if self.recorder is not None:
            self._bases[segment] = self._next_base
            self._next_base += alloc
            self.recorder.segment_alloc(self._bases[segment], alloc, small=small, frames=_frames())
        self.reserved += alloc
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        block = Block(segment, 0, alloc, small)
        self._add_free(block)
        return block

    def _release_cached(self) -> None:
        for small in (True, False):
            for key in list(self._free[small]):
                block = self._by_key[key]
                if block.prev is None and block.next is None:
                    self._remove_free(block)
                    self.reserved -= self._segments.pop(block.segment)
                    if self.recorder is not None:
                        self.recorder.segment_free(self._bases.pop(block.segment))

    def _address(self, block: Block) -> int:
        return self._bases[block.segment] + block.offset

    def _add_free(self, block: Block) -> None:
        bisect.insort(self._free[block.small], block.key)
        self._by_key[block.key] = block

    def _remove_free(self, block: Block) -> None:
        pool = self._free[block.small]
        del pool[bisect.bisect_left(pool, block.key)]
        del self._by_key[block.key]


def _frames():
    """The Python stack of the allocation, for the snapshot."""
    return python_frames()
