"""The caching-allocator model: rounding, pools, segment sizes, reuse, splitting, the cap."""

from __future__ import annotations

from pytest_gptcfg.engine.allocator import (
    CachingAllocator,
    ExpandableAllocator,
    allocation_size,
    round_size,
)

KiB, MiB = 1024, 1024**2


def test_requests_round_up_to_512_bytes():
    assert [round_size(n) for n in (1, 511, 512, 513, 4000)] == [512, 512, 512, 1024, 4096]


def test_segment_sizes_follow_the_pools():
    assert allocation_size(512) == 2 * MiB
    assert allocation_size(1 * MiB) == 2 * MiB
    assert allocation_size(1 * MiB + 512) == 20 * MiB
    assert allocation_size(10 * MiB - 512) == 20 * MiB
    assert allocation_size(10 * MiB) == 10 * MiB
    assert allocation_size(11 * MiB + 1) == 12 * MiB


def test_small_blocks_share_one_2_mib_segment():
    a = CachingAllocator()
    blocks = [a.malloc(100 * KiB) for _ in range(20)]
    assert a.reserved == 2 * MiB
    assert a.allocated == 20 * 100 * KiB
    a.malloc(100 * KiB)
    assert a.reserved == 4 * MiB
    for b in blocks:
        a.free(b)
    assert a.allocated == 100 * KiB
    assert a.reserved == 4 * MiB


def test_mid_sized_requests_carve_up_a_20_mib_segment():
    a = CachingAllocator()
    a.malloc(4 * MiB)
    a.malloc(4 * MiB)
    a.malloc(4 * MiB)
    assert a.reserved == 20 * MiB


def test_freed_blocks_are_reused_and_split_without_new_segments():
    a = CachingAllocator()
    big = a.malloc(100 * MiB)
    a.free(big)
    first = a.malloc(60 * MiB)
    second = a.malloc(30 * MiB)
    assert a.reserved == 100 * MiB
    assert a.allocated == 90 * MiB
    a.free(first)
    a.free(second)
    assert a.malloc(100 * MiB) is not None
    assert a.reserved == 100 * MiB, "freed neighbours merge back into one block"


def test_a_large_remainder_under_1_mib_is_not_split_off():
    a = CachingAllocator()
    a.free(a.malloc(12 * MiB))
    block = a.malloc(11 * MiB + 512 * KiB)
    assert block.size == 12 * MiB
    assert a.allocated == 12 * MiB


def test_best_fit_picks_the_smallest_free_block_that_fits():
    a = CachingAllocator()
    large, keep, small = a.malloc(50 * MiB), a.malloc(40 * MiB), a.malloc(30 * MiB)
    a.free(large)
    a.free(small)
    a.malloc(30 * MiB)
    assert a.reserved == 120 * MiB
    assert keep is not None
    a.malloc(50 * MiB)
    assert a.reserved == 120 * MiB


def test_peaks_are_remembered_after_frees():
    a = CachingAllocator()
    a.free(a.malloc(30 * MiB))
    a.malloc(4 * MiB)
    assert a.allocated == 4 * MiB
    assert a.peak_allocated == 30 * MiB
    assert a.peak_reserved == 30 * MiB, "the 4 MiB request is cut from the cached 30 MiB block"


def test_the_cap_releases_free_cached_segments_before_failing():
    a = CachingAllocator(limit=100 * MiB)
    a.free(a.malloc(60 * MiB))
    a.malloc(80 * MiB + 512)
    assert not a.oom
    assert a.reserved == 82 * MiB


def test_exceeding_the_cap_is_out_of_memory():
    a = CachingAllocator(limit=100 * MiB)
    a.malloc(60 * MiB)
    a.malloc(60 * MiB)
    assert a.oom


def test_zero_byte_requests_take_no_memory():
    a = CachingAllocator()
    a.free(a.malloc(0))
    assert (a.allocated, a.reserved) == (0, 0)


# expandable_segments:True (ExpandableAllocator)


def test_an_expandable_pool_maps_whole_pages():
    a = ExpandableAllocator()
    a.malloc(100 * KiB)
    a.malloc(30 * MiB)
    assert a.reserved == 2 * MiB + 40 * MiB, "2 MiB pages in the small pool, 20 MiB in the large"
    assert a.allocated == 100 * KiB + 30 * MiB


def test_an_expandable_segment_grows_into_the_free_space_at_its_end():
    a = ExpandableAllocator()
    a.malloc(30 * MiB)
    a.malloc(5 * MiB)
    assert a.reserved == 40 * MiB, "the 5 MiB fits the mapped 10 MiB after the first block"
    a.malloc(12 * MiB)
    assert a.reserved == 60 * MiB, "the free 5 MiB tail and one more page hold 12 MiB"


def test_an_expandable_segment_splits_any_remainder_of_512_bytes():
    a = ExpandableAllocator()
    a.free(a.malloc(12 * MiB))
    block = a.malloc(11 * MiB + 512 * KiB)
    assert block.size == 11 * MiB + 512 * KiB
    assert a.allocated == 11 * MiB + 512 * KiB


def test_freed_blocks_of_an_expandable_segment_merge_and_are_reused():
    a = ExpandableAllocator()
    first, second, keep = a.malloc(40 * MiB), a.malloc(40 * MiB), a.malloc(40 * MiB)
    a.free(first)
    a.free(second)
    a.malloc(80 * MiB)
    assert a.reserved == 120 * MiB
    assert keep is not None


def test_a_growing_request_reuses_an_expandable_segment_where_it_needs_new_segments():
    """One tensor at a time, each 2 MiB larger than the last: by default no cached segment is
    large enough for the next one (22, 24, ... 40 MiB segments); the expandable segment's two
    pages hold them all."""
    default, expandable = CachingAllocator(), ExpandableAllocator()
    for allocator in (default, expandable):
        for mib in range(21, 40, 2):
            allocator.free(allocator.malloc(mib * MiB))
    assert expandable.peak_reserved == 40 * MiB
    assert default.peak_reserved == sum(range(22, 41, 2)) * MiB


def test_an_expandable_segment_unmaps_free_pages_before_running_out():
    a = ExpandableAllocator(limit=100 * MiB)
    first = a.malloc(30 * MiB)
    a.malloc(30 * MiB)
    a.free(first)
    assert a.reserved == 60 * MiB
    a.malloc(50 * MiB)
    assert not a.oom
    assert a.reserved == 100 * MiB, "the first free page was unmapped to map three at the end"


def test_an_expandable_segment_past_the_cap_is_out_of_memory():
    a = ExpandableAllocator(limit=100 * MiB)
    a.malloc(60 * MiB)
    a.malloc(60 * MiB)
    assert a.oom
