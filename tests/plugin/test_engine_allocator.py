"""The caching-allocator model: rounding, pools, segment sizes, reuse, splitting, the cap."""

from __future__ import annotations

from pytest_gptcfg.engine.allocator import (
    ADDRESS_ORIGIN,
    ADDRESS_SPACE,
    CachingAllocator,
    ExpandableAllocator,
    allocation_size,
    round_size,
)
from pytest_gptcfg.engine.snapshot import SnapshotRecorder

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


def recorded(allocator: ExpandableAllocator) -> list[tuple[str, int, int]]:
    """The allocator's trace as (action, offset from the large pool's base, size)."""
    assert allocator.recorder is not None
    trace = allocator.recorder.snapshot()["device_traces"][0]
    return [(e["action"], e.get("addr", 0) - ADDRESS_ORIGIN, e["size"]) for e in trace]


def test_an_expandable_pool_records_the_pages_it_maps_and_blocks_at_base_plus_offset():
    a = ExpandableAllocator(recorder=SnapshotRecorder())
    first = a.malloc(30 * MiB - 100)
    a.malloc(5 * MiB)
    a.malloc(12 * MiB)
    a.free(first)
    small = ADDRESS_SPACE
    a.malloc(100 * KiB)
    assert recorded(a) == [
        ("segment_map", 0, 40 * MiB),
        ("alloc", 0, 30 * MiB - 100),
        ("alloc", 30 * MiB, 5 * MiB),
        ("segment_map", 40 * MiB, 20 * MiB),
        ("alloc", 35 * MiB, 12 * MiB),
        ("free_requested", 0, 30 * MiB - 100),
        ("free_completed", 0, 30 * MiB - 100),
        ("segment_map", small, 2 * MiB),
        ("alloc", small, 100 * KiB),
    ]
    large, small_pool = a.recorder.snapshot()["segments"]
    assert (large["address"], large["total_size"]) == (ADDRESS_ORIGIN, 60 * MiB)
    assert large["is_expandable"] and small_pool["is_expandable"]
    assert (small_pool["segment_type"], small_pool["total_size"]) == ("small", 2 * MiB)


def test_an_expandable_pool_records_the_pages_it_unmaps_at_the_cap():
    a = ExpandableAllocator(limit=100 * MiB, recorder=SnapshotRecorder())
    first = a.malloc(30 * MiB)
    a.malloc(30 * MiB)
    a.free(first)
    a.malloc(50 * MiB)
    events = recorded(a)
    assert events[-3:] == [
        ("segment_unmap", 0, 20 * MiB),
        ("segment_map", 60 * MiB, 60 * MiB),
        ("alloc", 60 * MiB, 50 * MiB),
    ]
    segments = a.recorder.snapshot()["segments"]
    ranges = [(s["address"] - ADDRESS_ORIGIN, s["total_size"]) for s in segments]
    assert ranges == [(20 * MiB, 100 * MiB)], "the first page unmapped, the rest one range"
    assert sum(s["total_size"] for s in segments) == a.reserved


def test_an_expandable_pool_past_the_cap_records_the_oom():
    a = ExpandableAllocator(limit=100 * MiB, recorder=SnapshotRecorder())
    a.malloc(60 * MiB)
    a.malloc(60 * MiB)
    oom = [e for e in a.recorder.snapshot()["device_traces"][0] if e["action"] == "oom"]
    assert [(e["size"], e["device_free"]) for e in oom] == [(60 * MiB, 40 * MiB)]
