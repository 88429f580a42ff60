"""How PyTorch's CUDA caching allocator sizes blocks and segments (`CUDACachingAllocator.cpp`,
default settings): the one statement of those rules, for the linter's estimate and the
plugin's allocator model alike.

- A request is rounded up to a multiple of 512 bytes (`round_size`, `kMinBlockSize`).
- Blocks of <= 1 MiB (`kSmallSize`) come from the small pool's 2 MiB segments
  (`kSmallBuffer`); larger ones from the large pool, whose segments are 20 MiB
  (`kLargeBuffer`) for requests under 10 MiB (`kMinLargeAlloc`) and the request rounded up to
  2 MiB (`kRoundLarge`) above (`allocation_size`).
- A free block is split when the rest is >= 512 bytes (small pool) or > 1 MiB (large pool)
  (`should_split`); otherwise the request gets the whole block, and `memory_allocated` counts
  it whole.
"""

from __future__ import annotations

MIN_BLOCK = 512
SMALL_SIZE = 1 << 20
SMALL_BUFFER = 2 << 20
LARGE_BUFFER = 20 << 20
MIN_LARGE_ALLOC = 10 << 20
ROUND_LARGE = 2 << 20


def round_size(size: int) -> int:
    """Bytes a request of `size` takes in a block."""
    if size < MIN_BLOCK:
        return MIN_BLOCK
    return MIN_BLOCK * ((size + MIN_BLOCK - 1) // MIN_BLOCK)


def allocation_size(size: int) -> int:
    """Bytes of the segment cudaMalloc'd for a rounded request that found no cached block."""
    if size <= SMALL_SIZE:
        return SMALL_BUFFER
    if size < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return ROUND_LARGE * ((size + ROUND_LARGE - 1) // ROUND_LARGE)


def should_split(remaining: int, small: bool) -> bool:
    """Whether a block with `remaining` bytes beyond the request is split."""
    return remaining >= MIN_BLOCK if small else remaining > SMALL_SIZE


def fresh_block_size(size: int) -> int:
    """What `memory_allocated` counts for a request of `size` bytes served from a new segment:
    the rounded request, or the whole segment when the rest is too small to split off (a
    40.96 MB request takes a 41.94 MB block)."""
    rounded = round_size(size)
    segment = allocation_size(rounded)
    return rounded if should_split(segment - rounded, rounded <= SMALL_SIZE) else segment
