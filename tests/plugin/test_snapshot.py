"""Memory snapshots: the simulation's recorder writes what PyTorch's memory_viz reads."""

from __future__ import annotations

import base64
import json
import pickle
import pickletools
import random
import re
import subprocess
import sys

import pytest

from pytest_gptcfg.engine.allocator import (
    CachingAllocator,
    ExpandableAllocator,
    allocation_size,
    round_size,
)
from pytest_gptcfg.engine.snapshot import (
    PICKLE_PROTOCOL,
    SnapshotRecorder,
    dump_cuda_snapshot,
    python_frames,
    record_cuda_history,
    stop_cuda_history,
)

MiB = 1024**2
BASE = 0x7F12_0000_0000
"""A device address above 2**32, as real ones are (pickled as LONG1, like CUDA's)."""
SMALL_BASE = BASE + 20 * MiB

FORWARD = [("model.py", 51, "forward"), ("train.py", 300, "step")]
BACKWARD = [("train.py", 305, "step")]

# The opcodes the unpickler of torch/utils/viz/MemoryViz.js (the code behind
# pytorch.org/memory_viz) handles; any other opcode makes it throw "UNKNOWN OPCODE".
MEMORY_VIZ_OPCODES = {
    "PROTO", "FRAME", "STOP", "MARK", "MEMOIZE", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET",
    "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "EMPTY_LIST", "LIST", "APPEND", "APPENDS",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "BININT", "BININT1", "BININT2",
    "LONG1", "BINFLOAT", "SHORT_BINUNICODE", "BINUNICODE", "NEWTRUE", "NEWFALSE", "NONE",
}  # fmt: skip


def step_recording() -> SnapshotRecorder:
    """A large and a small segment; three blocks, the middle one freed; a segment come and gone."""
    r = SnapshotRecorder()
    r.segment_alloc(BASE, 20 * MiB, small=False, frames=FORWARD)
    r.alloc(BASE, 4 * MiB, 4 * MiB - 100, FORWARD)
    r.alloc(BASE + 4 * MiB, 6 * MiB, 6 * MiB, FORWARD)
    r.alloc(BASE + 10 * MiB, 2 * MiB, 2 * MiB, FORWARD)
    r.segment_alloc(SMALL_BASE, 2 * MiB, small=True)
    r.alloc(SMALL_BASE, 512, 8, BACKWARD)
    r.free(BASE + 4 * MiB, BACKWARD)
    r.segment_alloc(SMALL_BASE + 2 * MiB, 30 * MiB, small=False)
    r.alloc(SMALL_BASE + 2 * MiB, 30 * MiB, 30 * MiB)
    r.free(SMALL_BASE + 2 * MiB)
    r.segment_free(SMALL_BASE + 2 * MiB)
    return r


def expandable_recording() -> SnapshotRecorder:
    """One expandable large pool: pages mapped as it grows, a page in the middle unmapped (the
    range splits), the last page unmapped and mapped again (it rejoins)."""
    r = SnapshotRecorder()
    r.segment_map(BASE, 40 * MiB, small=False, frames=FORWARD)
    r.alloc(BASE, 10 * MiB, 10 * MiB - 100, FORWARD)
    r.alloc(BASE + 10 * MiB, 25 * MiB, 25 * MiB, FORWARD)
    r.segment_map(BASE + 40 * MiB, 40 * MiB, small=False)
    r.alloc(BASE + 35 * MiB, 40 * MiB, 40 * MiB, BACKWARD)
    r.free(BASE + 35 * MiB, BACKWARD)
    r.segment_unmap(BASE + 60 * MiB, 20 * MiB)
    r.segment_map(BASE + 60 * MiB, 20 * MiB, small=False)
    r.free(BASE + 10 * MiB)
    r.segment_unmap(BASE + 20 * MiB, 20 * MiB)
    r.segment_map(SMALL_BASE + 100 * MiB, 2 * MiB, small=True)
    r.alloc(SMALL_BASE + 100 * MiB, 512, 8, BACKWARD)
    return r


def replay(trace: list[dict]) -> tuple[dict[int, int], dict[int, int]]:
    """Segments (mapped ranges joined) and live allocations (address -> size) after `trace`,
    replayed from nothing."""
    segments: dict[int, int] = {}
    blocks: dict[int, int] = {}
    for e in trace:
        if e["action"] == "segment_alloc":
            segments[e["addr"]] = e["size"]
        elif e["action"] == "segment_free":
            del segments[e["addr"]]
        elif e["action"] == "segment_map":
            segments[e["addr"]] = e["size"]
            segments = _joined(segments)
        elif e["action"] == "segment_unmap":
            base = max(a for a in segments if a <= e["addr"])
            end, top = e["addr"] + e["size"], base + segments.pop(base)
            segments.update({base: e["addr"] - base, end: top - end})
            segments = {a: size for a, size in segments.items() if size}
        elif e["action"] == "alloc":
            blocks[e["addr"]] = e["size"]
        elif e["action"] == "free_completed":
            del blocks[e["addr"]]
    return segments, blocks


def _joined(segments: dict[int, int]) -> dict[int, int]:
    """Address ranges with the adjacent ones joined."""
    out: dict[int, int] = {}
    for address in sorted(segments):
        last = max(out, default=None)
        if last is not None and last + out[last] == address:
            out[last] += segments[address]
        else:
            out[address] = segments[address]
    return out


def memory_viz_segments_before(snapshot: dict) -> list[tuple[int, int]]:
    """The segments memory_viz's segment view (MemoryViz.js `simulate_memory`) shows before
    the first event: it starts from `segments` and undoes the trace backwards, joining an
    unmapped range with the ranges it touches and cutting a mapped range out of the one that
    must hold it."""
    segments = sorted((s["address"], s["total_size"]) for s in snapshot["segments"])
    for e in reversed(snapshot["device_traces"][0]):
        action, address, size = e["action"], e.get("addr", 0), e["size"]
        if action in ("segment_free", "segment_unmap"):
            segments.append((address, size))
            segments = (
                sorted(_joined(dict(segments)).items())
                if action == "segment_unmap"
                else sorted(segments)
            )
        elif action == "segment_alloc":
            segments.remove((address, size))
        elif action == "segment_map":
            holder = next(s for s in segments if s[0] <= address and address + size <= sum(s))
            segments.remove(holder)
            pieces = [
                (holder[0], address - holder[0]),
                (address + size, sum(holder) - address - size),
            ]
            segments = sorted(segments + [p for p in pieces if p[1]])
    return segments


def active(snapshot: dict) -> dict[int, int]:
    return {
        b["address"]: b["requested_size"]
        for s in snapshot["segments"]
        for b in s["blocks"]
        if b["state"] == "active_allocated"
    }


def test_a_freed_block_becomes_inactive_and_the_blocks_tile_the_segment():
    large, small = step_recording().snapshot()["segments"]
    layout = [(b["address"] - BASE, b["size"], b["state"]) for b in large["blocks"]]
    assert layout == [
        (0, 4 * MiB, "active_allocated"),
        (4 * MiB, 6 * MiB, "inactive"),
        (10 * MiB, 2 * MiB, "active_allocated"),
        (12 * MiB, 8 * MiB, "inactive"),
    ]
    assert (large["segment_type"], small["segment_type"]) == ("large", "small")
    assert [b["state"] for b in small["blocks"]] == ["active_allocated", "inactive"]
    assert sum(b["size"] for b in small["blocks"]) == small["total_size"] == 2 * MiB


def test_freeing_neighbours_merges_them_into_one_inactive_block():
    r = step_recording()
    r.free(BASE)
    large = r.snapshot()["segments"][0]
    layout = [(b["address"] - BASE, b["size"], b["state"]) for b in large["blocks"]]
    assert layout[0] == (0, 10 * MiB, "inactive")


def test_segment_totals_count_the_active_blocks():
    large, small = step_recording().snapshot()["segments"]
    assert large["allocated_size"] == large["active_size"] == 6 * MiB
    assert large["requested_size"] == 6 * MiB - 100
    assert (small["allocated_size"], small["requested_size"]) == (512, 8)


@pytest.mark.parametrize("recording", [step_recording, expandable_recording])
def test_the_trace_replayed_from_nothing_ends_in_the_recorded_state(recording):
    snapshot = recording().snapshot()
    segments, blocks = replay(snapshot["device_traces"][0])
    assert segments == {s["address"]: s["total_size"] for s in snapshot["segments"]}
    assert blocks == active(snapshot)


def test_an_expandable_segment_shows_each_mapped_range_as_a_segment():
    snapshot = expandable_recording().snapshot()
    ranges = [
        (s["address"] - BASE, s["total_size"], s["segment_type"]) for s in snapshot["segments"]
    ]
    assert ranges == [
        (0, 20 * MiB, "large"),
        (40 * MiB, 40 * MiB, "large"),
        (SMALL_BASE + 100 * MiB - BASE, 2 * MiB, "small"),
    ]
    assert all(s["is_expandable"] for s in snapshot["segments"])
    assert not any(s["is_expandable"] for s in step_recording().snapshot()["segments"])
    first = snapshot["segments"][0]
    layout = [(b["address"] - BASE, b["size"], b["state"]) for b in first["blocks"]]
    assert layout == [(0, 10 * MiB, "active_allocated"), (10 * MiB, 10 * MiB, "inactive")]
    assert first["frames"][0]["name"] == "forward"


def test_mapping_and_unmapping_pages_are_traced_with_their_range():
    trace = expandable_recording().snapshot()["device_traces"][0]
    pages = [(e["action"], e["addr"] - BASE, e["size"]) for e in trace if "segment" in e["action"]]
    assert pages == [
        ("segment_map", 0, 40 * MiB),
        ("segment_map", 40 * MiB, 40 * MiB),
        ("segment_unmap", 60 * MiB, 20 * MiB),
        ("segment_map", 60 * MiB, 20 * MiB),
        ("segment_unmap", 20 * MiB, 20 * MiB),
        ("segment_map", SMALL_BASE + 100 * MiB - BASE, 2 * MiB),
    ]


@pytest.mark.parametrize("recording", [step_recording, expandable_recording])
def test_memory_viz_undoing_the_trace_starts_from_no_segments(recording):
    assert memory_viz_segments_before(recording().snapshot()) == []


def test_events_carry_requested_sizes_and_the_frames_given():
    trace = step_recording().snapshot()["device_traces"][0]
    first_alloc = next(e for e in trace if e["action"] == "alloc")
    assert first_alloc["size"] == 4 * MiB - 100
    assert first_alloc["frames"] == [
        {"filename": "model.py", "line": 51, "name": "forward"},
        {"filename": "train.py", "line": 300, "name": "step"},
    ]
    free = [e for e in trace if e["action"].startswith("free") and e["addr"] == BASE + 4 * MiB]
    assert [e["action"] for e in free] == ["free_requested", "free_completed"]
    assert all(e["size"] == 6 * MiB and e["frames"][0]["line"] == 305 for e in free)
    times = [e["time_us"] for e in trace]
    assert times == sorted(times)


def test_a_free_without_frames_reports_the_allocation_stack():
    r = SnapshotRecorder()
    r.segment_alloc(BASE, 2 * MiB, small=True)
    r.alloc(BASE, 512, 512, FORWARD)
    r.free(BASE)
    freed = r.snapshot()["device_traces"][0][-1]
    assert freed["frames"][0]["name"] == "forward"


def test_other_devices_get_empty_traces():
    r = SnapshotRecorder(device=2)
    r.segment_alloc(BASE, 2 * MiB, small=True)
    snapshot = r.snapshot()
    assert [len(t) for t in snapshot["device_traces"]] == [0, 0, 1]
    assert snapshot["segments"][0]["device"] == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.alloc(BASE + 40 * MiB, 512, 512), "in no live segment"),
        (lambda r: r.alloc(BASE + 2 * MiB, 4 * MiB, 4 * MiB), "overlaps a live block"),
        (lambda r: r.alloc(BASE + 18 * MiB, 4 * MiB, 4 * MiB), "runs past its segment"),
        (lambda r: r.alloc(BASE + 16 * MiB, 512, 1024), "bad block"),
        (lambda r: r.free(BASE + 4 * MiB), "no live block"),
        (lambda r: r.segment_free(BASE), "still holds 2 blocks"),
        (lambda r: r.segment_alloc(BASE + 19 * MiB, 2 * MiB, small=True), "overlaps"),
        (lambda r: r.segment_alloc(BASE - MiB, 2 * MiB, small=True), "overlaps"),
    ],
)
def test_an_inconsistent_event_is_rejected_and_not_recorded(call, message):
    r = step_recording()
    before = r.snapshot()
    with pytest.raises(ValueError, match=message):
        call(r)
    assert r.snapshot() == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.segment_unmap(BASE + 5 * MiB, 2 * MiB), "drop a live block"),
        (lambda r: r.segment_unmap(BASE + 10 * MiB, 20 * MiB), "runs past its mapped range"),
        (lambda r: r.segment_unmap(BASE + 30 * MiB, 2 * MiB), "in no live segment"),
        (lambda r: r.segment_map(BASE + 19 * MiB, 2 * MiB, small=False), "overlaps"),
        (lambda r: r.segment_free(BASE), "is expandable"),
        (lambda r: r.alloc(BASE + 15 * MiB, 10 * MiB, 10 * MiB), "runs past its segment"),
    ],
)
def test_an_inconsistent_expandable_event_is_rejected_and_not_recorded(call, message):
    r = expandable_recording()
    before = r.snapshot()
    with pytest.raises(ValueError, match=message):
        call(r)
    assert r.snapshot() == before


def test_only_an_expandable_segment_unmaps_pages():
    with pytest.raises(ValueError, match="not expandable"):
        step_recording().segment_unmap(BASE + 16 * MiB, 2 * MiB)


def test_the_oom_event_has_the_format_of_cudas():
    r = step_recording()
    r.oom(64 * MiB, device_free=3 * MiB, frames=FORWARD)
    event = r.snapshot()["device_traces"][0][-1]
    assert event["action"] == "oom"
    assert (event["size"], event["device_free"]) == (64 * MiB, 3 * MiB)
    assert "addr" not in event


def test_the_dump_round_trips_through_pickle(tmp_path):
    r = step_recording()
    path = r.dump(tmp_path / "snapshots" / "train_big.pickle")
    with path.open("rb") as f:
        assert pickle.load(f) == r.snapshot()


def test_the_dump_uses_only_what_memory_viz_can_unpickle(tmp_path):
    r = step_recording()
    r.oom(64 * MiB, device_free=3 * MiB)
    data = r.dump(tmp_path / "s.pickle").read_bytes()
    ops = list(pickletools.genops(data))
    assert ops[0][0].name == "PROTO" and ops[0][1] == PICKLE_PROTOCOL <= 4
    assert {op.name for op, _, _ in ops} <= MEMORY_VIZ_OPCODES


@pytest.fixture(scope="module")
def viz():
    pytest.importorskip("torch")
    from torch.cuda import _memory_viz

    return _memory_viz


class TestTorchMemoryViz:
    """torch's own reader (`torch.cuda._memory_viz`) takes the snapshot and reports its sizes."""

    def test_segsum_accounts_for_every_byte(self, viz):
        text = viz.segsum(step_recording().snapshot())
        assert "segments: 2" in text
        assert "total_reserved: 22.0MiB" in text
        assert re.search(r"total_allocated: 6\.0MiB", text)

    def test_segsum_accounts_for_the_mapped_ranges(self, viz):
        text = viz.segsum(expandable_recording().snapshot())
        assert "segments: 3" in text
        assert "total_reserved: 62.0MiB" in text
        assert re.search(r"total_allocated: 10\.0MiB", text)

    def test_trace_lists_the_events_in_order(self, viz):
        text = viz.trace(step_recording().snapshot())
        assert "cudaMalloc" in text and "cudaFree" in text
        assert text.index("= cudaMalloc") < text.index("del ")
        assert "13 entries" in text

    def test_the_oom_shows_in_the_trace(self, viz):
        r = step_recording()
        r.oom(64 * MiB, device_free=3 * MiB)
        assert "raise OutOfMemoryError # 64.0MiB requested, 3.0MiB free" in viz.trace(r.snapshot())

    def test_the_flamegraph_input_sums_to_the_segments(self, viz):
        lines = viz.segments(step_recording().snapshot(), format_flamegraph=lambda text: text)
        sizes: dict[tuple[str, bool], int] = {}
        for line in lines.splitlines():
            stack, size = line.rsplit(" ", 1)
            key = (stack.split(";")[2], stack.endswith("<gaps>"))
            sizes[key] = sizes.get(key, 0) + int(size)
        assert sizes["active_allocated", False] == 6 * MiB - 100 + 8, "requested bytes"
        assert sizes["active_allocated", True] == 100 + 504, "rounding inside the blocks"
        assert sum(sizes.values()) == 22 * MiB
        memory = viz.memory(step_recording().snapshot(), format_flamegraph=lambda text: text)
        assert "model.py:51:forward" in memory

    @pytest.mark.parametrize("plot", ["trace_plot", "segment_plot"])
    def test_the_html_viewers_embed_the_snapshot(self, viz, plot):
        snapshot = step_recording().snapshot()
        html = getattr(viz, plot)(snapshot)
        files = json.loads(re.search(r"const local_files = (\[.*?\])\n", html).group(1))
        assert pickle.loads(base64.b64decode(files[0]["base64"])) == snapshot

    def test_filtering_freed_pairs_keeps_the_live_allocations(self, viz):
        snapshot = viz.filter_alloc_free_pairs(step_recording().snapshot())
        left = [e for e in snapshot["device_traces"][0] if e["action"] == "alloc"]
        assert sorted(e["addr"] for e in left) == sorted(active(snapshot))


def test_an_allocator_model_driven_recording_matches_the_model():
    """Wired as the simulation will be: segment base + block offset, fed on every malloc/free."""
    allocator = CachingAllocator()
    recorder = SnapshotRecorder()
    bases: dict[int, int] = {}
    next_base = BASE
    live = []
    rng = random.Random(5)
    for _ in range(3000):
        if live and rng.random() < 0.45:
            block = live.pop(rng.randrange(len(live)))
            recorder.free(bases[block.segment] + block.offset)
            allocator.free(block)
            continue
        nbytes = rng.choice([8, 4096, 200_000, 3 * MiB, 12 * MiB + 7])
        block = allocator.malloc(nbytes)
        if block.segment not in bases:
            size = allocation_size(round_size(nbytes))
            bases[block.segment] = next_base
            recorder.segment_alloc(next_base, size, small=block.small)
            next_base += size
        recorder.alloc(bases[block.segment] + block.offset, block.size, nbytes)
        live.append(block)
    snapshot = recorder.snapshot()
    assert sum(s["total_size"] for s in snapshot["segments"]) == allocator.reserved
    assert sum(s["allocated_size"] for s in snapshot["segments"]) == allocator.allocated
    assert replay(snapshot["device_traces"][0])[1] == active(snapshot)


def test_an_expandable_allocator_recording_matches_the_model():
    """ExpandableAllocator feeding the recorder, at a cap that makes it unmap pages: the
    snapshot holds what the model holds and memory_viz can undo the whole trace."""
    allocator = ExpandableAllocator(limit=300 * MiB, recorder=SnapshotRecorder())
    live = []
    rng = random.Random(7)
    for _ in range(3000):
        if live and rng.random() < 0.5:
            allocator.free(live.pop(rng.randrange(len(live))))
            continue
        if allocator.allocated > 200 * MiB:
            continue
        live.append(
            allocator.malloc(rng.choice([8, 4096, 200_000, 3 * MiB, 12 * MiB + 7, 45 * MiB]))
        )
    assert allocator.recorder is not None
    snapshot = allocator.recorder.snapshot()
    actions = {e["action"] for e in snapshot["device_traces"][0]}
    assert {"segment_map", "segment_unmap"} <= actions
    assert not actions & {"segment_alloc", "segment_free"}
    assert sum(s["total_size"] for s in snapshot["segments"]) == allocator.reserved
    assert sum(s["allocated_size"] for s in snapshot["segments"]) == allocator.allocated
    assert replay(snapshot["device_traces"][0])[1] == active(snapshot)
    assert memory_viz_segments_before(snapshot) == []


def frames_here() -> list:
    return python_frames(limit=2)


def test_python_frames_are_innermost_first_and_skip_the_named_modules():
    frames = frames_here()
    assert frames[0] == (__file__, frames_here.__code__.co_firstlineno + 1, "frames_here")
    assert frames[1][2] == "test_python_frames_are_innermost_first_and_skip_the_named_modules"
    outside = python_frames(limit=5, skip=(__name__,))
    assert outside and all(f[0] != __file__ for f in outside)
    assert all("_pytest" not in f[0] for f in python_frames(limit=50))


def test_importing_the_module_does_not_import_torch():
    code = "import sys, pytest_gptcfg.engine.snapshot; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.fixture
def cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


def test_cuda_history_dumps_a_snapshot_with_the_allocation(cuda, tmp_path):
    record_cuda_history(max_entries=1000)
    x = cuda.empty(3 * MiB, dtype=cuda.uint8, device="cuda")
    path = dump_cuda_snapshot(tmp_path / "cuda.pickle")
    with path.open("rb") as f:
        snapshot = pickle.load(f)
    allocs = [e for t in snapshot["device_traces"] for e in t if e["action"] == "alloc"]
    assert any(e["addr"] == x.data_ptr() and e["size"] == 3 * MiB for e in allocs)
    assert not any(cuda.cuda.memory._snapshot()["device_traces"]), "recording stopped"


def test_stopping_cuda_history_drops_the_trace(cuda):
    record_cuda_history(max_entries=1000)
    cuda.empty(MiB, device="cuda")
    stop_cuda_history()
    assert not any(cuda.cuda.memory._snapshot()["device_traces"])
