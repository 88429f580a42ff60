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

`ExpandableAllocator` models `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True` instead.

`allocated` counts block sizes, as `torch.cuda.memory_allocated` does; `reserved` counts segment
sizes (mapped pages, with expandable segments), as `torch.cuda.memory_reserved` does. An
optional `recorder` (a `snapshot.SnapshotRecorder`) receives the events CUDA's own allocator
traces, with made-up but consistent addresses: each segment gets a base that is never reused
(each expandable pool one of its own), and a block's address is its base plus its offset.
"""

from __future__ import annotations

import bisect
import itertools

from gptlint.facts.cudablocks import (
    LARGE_BUFFER,
    MIN_BLOCK,
    SMALL_BUFFER,
    SMALL_SIZE,
    allocation_size,
    round_size,
    should_split,
)
from pytest_gptcfg.engine.snapshot import SnapshotRecorder, python_frames

ADDRESS_ORIGIN = 0x7F0000000000


class Block:
    """A piece of a segment, free or handed out; `mapped` is False only for the address
    space of an expandable segment that no physical page backs."""

    __slots__ = ("free", "mapped", "next", "offset", "prev", "segment", "size", "small")

    def __init__(self, segment: int, offset: int, size: int, small: bool) -> None:
        self.segment = segment
        self.offset = offset
        self.size = size
        self.small = small
        self.free = True
        self.mapped = True
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
        block = self._take(size, small)
        self._remove_free(block)
        rest = block.size - size
        if self._splits(rest, small):
            tail = Block(block.segment, block.offset + size, rest, small)
            self._link_after(block, tail)
            block.size = size
            self._add_free(tail)
        block.free = False
        self.allocated += block.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        if self.recorder is not None:
            self.recorder.alloc(self._address(block), block.size, requested, _frames())
        return block

    def _take(self, size: int, small: bool) -> Block:
        """The free block a request of `size` (rounded) bytes is cut from: the best fit among
        the cached ones, else a new segment."""
        return self._best_fit(size, small) or self._new_segment(size, small)

    @staticmethod
    def _splits(rest: int, small: bool) -> bool:
        """Whether the `rest` of a block cut for a request becomes a free block of its own."""
        return should_split(rest, small)

    @staticmethod
    def _link_after(block: Block, tail: Block) -> None:
        tail.prev, tail.next = block, block.next
        if block.next is not None:
            block.next.prev = tail
        block.next = tail

    def free(self, block: Block | None) -> None:
        """Return `block` to its pool, merging it with free neighbours."""
        if block is None:
            return
        if self.recorder is not None:
            self.recorder.free(self._address(block))
        self.allocated -= block.size
        block.free = True
        self._add_free(self._merged(block))

    def _merged(self, block: Block) -> Block:
        """`block` joined with its free neighbours, which leave the free list; the joined
        block, in none."""
        for other in (block.prev, block.next):
            if other is not None and other.free:
                self._remove_free(other)
                block = self._join(block, other)
        return block

    @staticmethod
    def _join(block: Block, other: Block) -> Block:
        """Adjacent `block` and `other` as one block (the first of the two)."""
        first, second = (other, block) if other is block.prev else (block, other)
        first.size += second.size
        first.next = second.next
        if second.next is not None:
            second.next.prev = first
        return first

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


ADDRESS_SPACE = 1 << 50
"""The address space an expandable segment reserves (CUDA reserves 1 1/8 of the GPU's memory;
here, more than any run maps)."""


class ExpandableAllocator(CachingAllocator):
    """The caching allocator with `expandable_segments:True` (nanochat's base_train sets it).

    Follows `ExpandableSegment` and its callers in `CUDACachingAllocator.cpp`: each pool is one
    segment of reserved address space, backed by physical pages as it grows: 2 MiB pages
    (`kSmallBuffer`) in the small pool, 20 MiB (`kLargeBuffer`) in the large one. `reserved` is
    the mapped pages.

    - A request (rounded to 512 bytes) takes the best-fitting free mapped block, among equally
      fitting ones preferring a block that is not followed by unmapped space
      (`get_free_block`'s "expandable size"); any remainder of 512 bytes or more is split off
      (`should_split` with expandable segments, both pools).
    - Otherwise the segment grows where the lowest unmapped range, with the free block just
      before it, holds the request (`find_expandable_block`): the pages it needs are mapped and
      merge with that free block (`try_allocate_expandable_block`, `map_block`).
    - Freed blocks merge with free mapped neighbours; nothing is unmapped during the step,
      except when mapping would pass the memory limit: then every whole free page is unmapped
      (`release_cached_blocks`) and the mapping tried once more; failing that, out of memory.

    The `recorder` gets what CUDA traces with expandable segments: `segment_map` for the pages
    each mapping backs, `segment_unmap` for the pages released, and the blocks' `alloc` and
    `free` at their pool's base plus their offset (no `segment_alloc`: reserving address space
    is not traced).
    """

    def __init__(self, limit: int | None = None, recorder: SnapshotRecorder | None = None) -> None:
        super().__init__(limit, recorder)
        self._unmapped: dict[bool, list[int]] = {True: [], False: []}
        self._unmapped_at: dict[tuple[bool, int], Block] = {}
        for small in (True, False):
            tail = Block(int(small), 0, ADDRESS_SPACE, small)
            tail.mapped = False
            self._add_unmapped(tail)
            self._bases[tail.segment] = ADDRESS_ORIGIN + tail.segment * ADDRESS_SPACE

    def _take(self, size: int, small: bool) -> Block:
        """The best-fitting free mapped block, else pages mapped where the segment can grow
        (after unmapping every whole free page, when the cap is reached); out of memory when
        even that passes the cap (the pages are mapped regardless, to go on)."""
        block = self._fit(size, small) or self._grow(size, small)
        if block is None:
            self._unmap_free_pages()
            block = self._grow(size, small)
        if block is None:
            self.oom = True
            if self.recorder is not None and self.limit is not None:
                self.recorder.oom(size, max(self.limit - self.reserved, 0), _frames())
            block = self._grow(size, small, capped=False)
        assert block is not None
        return block

    @staticmethod
    def _splits(rest: int, small: bool) -> bool:
        """With expandable segments any rest of `MIN_BLOCK` bytes or more is split off, in
        both pools."""
        return rest >= MIN_BLOCK

    def _fit(self, size: int, small: bool) -> Block | None:
        pool = self._free[small]
        i = bisect.bisect_left(pool, (size, -1, -1))
        if i == len(pool):
            return None
        best = self._by_key[pool[i]]
        for key in pool[i + 1 :]:
            other = self._by_key[key]
            if _expandable_size(other) >= _expandable_size(best):
                break
            best = other
        return best

    def _grow(self, size: int, small: bool, capped: bool = True) -> Block | None:
        """Map pages for `size` bytes at the lowest unmapped range that holds them with the free
        block before it; the free mapped block made, or None where the limit stops it."""
        candidate = None
        for offset in self._unmapped[small]:
            block = self._unmapped_at[(small, offset)]
            if block.prev is not None and block.prev.free and block.prev.mapped:
                block = block.prev
            if _room(block, size):
                candidate = block
                break
        assert candidate is not None, "the last unmapped range is never exhausted"
        if not candidate.mapped:
            candidate = self._map(candidate, min(candidate.size, size), capped)
            if candidate is None:
                return None
        while candidate.size < size:
            following = candidate.next
            assert following is not None and not following.mapped
            mapped = self._map(following, min(size - candidate.size, following.size), capped)
            if mapped is None:
                return None
            candidate = mapped
        return candidate

    def _map(self, block: Block, size: int, capped: bool) -> Block | None:
        """Back the first `size` bytes of unmapped `block` with whole pages; the free mapped
        block they make (merged with free mapped neighbours), or None over the limit."""
        page = _page(block.small)
        length = -(-(block.offset + size) // page) * page - block.offset
        if capped and self.limit is not None and self.reserved + length > self.limit:
            return None
        self._remove_unmapped(block)
        if length < block.size:
            rest = Block(block.segment, block.offset + length, block.size - length, block.small)
            rest.mapped = False
            self._link_after(block, rest)
            block.size = length
            self._add_unmapped(rest)
        block.mapped = True
        self.reserved += length
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        if self.recorder is not None:
            self.recorder.segment_map(
                self._address(block), length, small=block.small, frames=_frames()
            )
        merged = self._merged(block)
        self._add_free(merged)
        return merged

    def _unmap_free_pages(self) -> None:
        """Unmap every page that lies wholly in a free mapped block (`release_cached_blocks`)."""
        for small in (True, False):
            page = _page(small)
            for key in list(self._free[small]):
                block = self._by_key[key]
                start = -(-block.offset // page) * page
                end = (block.offset + block.size) // page * page
                if start >= end:
                    continue
                self._remove_free(block)
                for lo, hi in ((block.offset, start), (end, block.offset + block.size)):
                    if lo < hi:  # the free remainders beside the pages
                        piece = self._carve(block, lo, hi)
                        self._add_free(piece)
                block.mapped = False
                self.reserved -= block.size
                if self.recorder is not None:
                    self.recorder.segment_unmap(self._address(block), block.size)
                self._add_unmapped(self._merged(block))

    def _carve(self, block: Block, lo: int, hi: int) -> Block:
        """Cut [lo, hi) off the start or the end of `block` as a block of its own."""
        piece = Block(block.segment, lo, hi - lo, block.small)
        if lo == block.offset:
            piece.prev, piece.next = block.prev, block
            if block.prev is not None:
                block.prev.next = piece
            block.prev = piece
            block.offset = hi
        else:
            self._link_after(block, piece)
        block.size -= hi - lo
        return piece

    def _merged(self, block: Block) -> Block:
        """`block` joined with its neighbours of the same state (free mapped, or unmapped),
        which leave their lists; the joined block, in none."""
        for other in (block.prev, block.next):
            if other is None or other.mapped != block.mapped:
                continue
            if block.mapped and not other.free:
                continue
            if other.mapped:
                self._remove_free(other)
            else:
                self._remove_unmapped(other)
            block = self._join(block, other)
        return block

    def _add_unmapped(self, block: Block) -> None:
        bisect.insort(self._unmapped[block.small], block.offset)
        self._unmapped_at[(block.small, block.offset)] = block

    def _remove_unmapped(self, block: Block) -> None:
        offsets = self._unmapped[block.small]
        del offsets[bisect.bisect_left(offsets, block.offset)]
        del self._unmapped_at[(block.small, block.offset)]


def _page(small: bool) -> int:
    """An expandable segment's page: 2 MiB in the small pool, 20 MiB in the large one."""
    return SMALL_BUFFER if small else LARGE_BUFFER


def _expandable_size(block: Block) -> int:
    """What a free block could grow to: its size and the unmapped range after it."""
    following = block.next
    return block.size + (following.size if following is not None and not following.mapped else 0)


def _room(block: Block, size: int) -> bool:
    """Whether the run of unallocated blocks (free or unmapped) from `block` holds `size`."""
    total = 0
    current: Block | None = block
    while total < size and current is not None and (current.free or not current.mapped):
        total += current.size
        current = current.next
    return total >= size


def _frames():
    """The Python stack of the allocation, for the snapshot."""
    return python_frames()
