"""Memory snapshots that PyTorch's memory visualizer (pytorch.org/memory_viz) opens.

Two sources, one format, the dictionary `torch.cuda.memory._snapshot()` returns:

- CUDA mode: the caching allocator's own recorder (`record_cuda_history`, then
  `dump_cuda_snapshot` or `stop_cuda_history`);
- simulation: `SnapshotRecorder`, which the caching-allocator model feeds with the same
  events the CUDA allocator traces (`segment_alloc`, `alloc`, `free`, `segment_free`, `oom`;
  with expandable segments `segment_map` and `segment_unmap` instead of the segment events).

The format (`torch/csrc/cuda/memory_snapshot.cpp`, `torch/cuda/memory.py::_snapshot`):
`segments` is the state at the end, each segment's `blocks` tiling it in address order
(`active_allocated` blocks and the free `inactive` runs between them); `device_traces` holds,
per device, every event in order. An `alloc` event's size is the requested size, the
`free_requested` / `free_completed` pair repeats it, a segment event's size is the segment's;
frames are innermost first. memory_viz replays the trace backwards from the segments, so the
two must agree: the trace replayed from nothing must end in exactly the recorded state.

With expandable segments (`CUDACachingAllocator.cpp`'s `map_block` / `unmap_block` and
`snapshot`) a pool reserves one address range and backs it with pages as it grows: mapping
pages is a `segment_map` event, unmapping them a `segment_unmap` event (address and size of the
pages), and `segments` holds one entry per contiguous mapped range, `is_expandable` set.
memory_viz's segment view, replaying backwards, joins a `segment_unmap`'s range with the mapped
ranges it touches and cuts a `segment_map`'s out of the one holding it.

Files are pickled with protocol 4, the newest one memory_viz's JavaScript unpickler reads.
Importing this module does not import torch.
"""

from __future__ import annotations

import bisect
import pickle
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

Frame = tuple[str, int, str]
"""One Python frame: (filename, line, function name)."""

PICKLE_PROTOCOL = 4
"""memory_viz's unpickler rejects protocols above 4 (Python 3.14 pickles with 5 by default)."""

CUDA_MAX_ENTRIES = 100_000
"""Trace entries CUDA's recorder keeps by default (a ring buffer: the latest survive)."""

SKIPPED_MODULES = (
    "torch",
    "_pytest",
    "pluggy",
    "pytest_gptcfg.engine.allocator",
    "pytest_gptcfg.engine.tracker",
    "pytest_gptcfg.engine.simulate",
    "pytest_gptcfg.engine.snapshot",
)
"""Modules (and their submodules) whose frames `python_frames` leaves out."""


def python_frames(limit: int = 8, skip: Sequence[str] = SKIPPED_MODULES) -> list[Frame]:
    """The caller's Python stack, innermost first: at most `limit` frames not in `skip` modules.

    Cheap enough to call on every allocation: it walks frame objects and formats nothing.
    """
    frames: list[Frame] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and len(frames) < limit:
        module = frame.f_globals.get("__name__", "")
        if not any(module == s or module.startswith(s + ".") for s in skip):
            code = frame.f_code
            frames.append((code.co_filename, frame.f_lineno or 0, code.co_name))
        frame = frame.f_back
    return frames


@dataclass
class _Block:
    size: int
    requested_size: int
    frames: list[dict[str, Any]]


@dataclass
class _Segment:
    size: int
    small: bool
    frames: list[dict[str, Any]]
    expandable: bool = False
    """A mapped range of an expandable segment (else a cudaMalloc'd segment)."""
    blocks: dict[int, _Block] = field(default_factory=dict)
    starts: list[int] = field(default_factory=list)
    """Addresses of `blocks`, sorted."""


class SnapshotRecorder:
    """Collects the caching-allocator model's events of one device into a memory_viz snapshot.

    Addresses are the model's virtual device addresses: a segment's base plus a block's offset
    in it (bases handed out as a running sum of segment sizes from a non-zero origin keep them
    unique; they must stay below 2**53, where JavaScript numbers stop being exact). Calls must
    describe a consistent allocator (blocks inside live segments, no overlaps, only empty
    segments freed, only pages no block lies on unmapped); a call that does not raises
    ValueError and records nothing. A live segment is a cudaMalloc'd segment, or a maximal
    mapped range of an expandable segment: pages mapped next to mapped pages of the same pool
    join their range, and unmapping pages in the middle of a range splits it in two.
    """

    def __init__(self, device: int = 0) -> None:
        self.device = device
        self._segments: dict[int, _Segment] = {}
        self._bases: list[int] = []
        self._trace: list[dict[str, Any]] = []
        self._stacks: dict[tuple[Frame, ...], list[dict[str, Any]]] = {}

    def segment_alloc(
        self, address: int, size: int, *, small: bool, frames: Iterable[Frame] = ()
    ) -> None:
        """A segment of `size` bytes was cudaMalloc'd at `address` (`small`: the small pool's)."""
        self._check_unused(address, size)
        stack = self._stack(frames)
        bisect.insort(self._bases, address)
        self._segments[address] = _Segment(size, small, stack)
        self._event("segment_alloc", address, size, stack)

    def segment_map(
        self, address: int, size: int, *, small: bool, frames: Iterable[Frame] = ()
    ) -> None:
        """Pages of `size` bytes at `address` were mapped into an expandable segment (`small`:
        the small pool's); they join the mapped ranges of that pool they touch."""
        self._check_unused(address, size)
        stack = self._stack(frames)
        i = bisect.bisect_left(self._bases, address)
        self._bases.insert(i, address)
        self._segments[address] = _Segment(size, small, stack, expandable=True)
        if i + 1 < len(self._bases):
            self._join(address, self._bases[i + 1])
        if i > 0:
            self._join(self._bases[i - 1], address)
        self._event("segment_map", address, size, stack)

    def segment_unmap(self, address: int, size: int, frames: Iterable[Frame] = ()) -> None:
        """Pages of `size` bytes at `address` of an expandable segment were unmapped; no live
        block may lie on them. A range losing pages in its middle becomes two."""
        base, segment = self._segment_at(address)
        end = address + size
        if not segment.expandable:
            raise ValueError(f"segment at {base:#x} is not expandable")
        if size <= 0 or end > base + segment.size:
            raise ValueError(f"unmapping {size} bytes at {address:#x} runs past its mapped range")
        i = bisect.bisect_left(segment.starts, address)
        if (i < len(segment.starts) and segment.starts[i] < end) or (
            i > 0 and segment.starts[i - 1] + segment.blocks[segment.starts[i - 1]].size > address
        ):
            raise ValueError(f"unmapping {address:#x} would drop a live block")
        rest = base + segment.size - end
        if rest > 0:
            tail = _Segment(rest, segment.small, segment.frames, expandable=True)
            tail.starts = segment.starts[i:]
            tail.blocks = {start: segment.blocks.pop(start) for start in tail.starts}
            del segment.starts[i:]
            bisect.insort(self._bases, end)
            self._segments[end] = tail
        if address > base:
            segment.size = address - base
        else:
            del self._segments[base]
            self._bases.remove(base)
        self._event("segment_unmap", address, size, self._stack(frames) or segment.frames)

    def segment_free(self, address: int, frames: Iterable[Frame] = ()) -> None:
        """The segment at `address` was returned with cudaFree; it must hold no live block."""
        segment = self._segments.get(address)
        if segment is None:
            raise ValueError(f"no live segment at {address:#x}")
        if segment.expandable:
            raise ValueError(f"segment at {address:#x} is expandable: its pages are unmapped")
        if segment.blocks:
            raise ValueError(f"segment at {address:#x} still holds {len(segment.blocks)} blocks")
        del self._segments[address]
        self._bases.remove(address)
        self._event("segment_free", address, segment.size, self._stack(frames))

    def alloc(
        self, address: int, size: int, requested_size: int, frames: Iterable[Frame] = ()
    ) -> None:
        """A block of `size` bytes at `address` was handed out for `requested_size` bytes."""
        if not 0 <= requested_size <= size or size <= 0:
            raise ValueError(f"bad block: size {size}, requested {requested_size}")
        base, segment = self._segment_at(address)
        if address + size > base + segment.size:
            raise ValueError(f"block at {address:#x} runs past its segment")
        i = bisect.bisect_left(segment.starts, address)
        if (i < len(segment.starts) and address + size > segment.starts[i]) or (
            i > 0 and segment.starts[i - 1] + segment.blocks[segment.starts[i - 1]].size > address
        ):
            raise ValueError(f"block at {address:#x} overlaps a live block")
        stack = self._stack(frames)
        segment.starts.insert(i, address)
        segment.blocks[address] = _Block(size, requested_size, stack)
        self._event("alloc", address, requested_size, stack)

    def free(self, address: int, frames: Iterable[Frame] = ()) -> None:
        """The block at `address` was freed (frames: the free's stack, else its allocation's)."""
        _, segment = self._segment_at(address)
        block = segment.blocks.pop(address, None)
        if block is None:
            raise ValueError(f"no live block at {address:#x}")
        segment.starts.remove(address)
        stack = self._stack(frames) or block.frames
        self._event("free_requested", address, block.requested_size, stack)
        self._event("free_completed", address, block.requested_size, stack)

    def oom(self, requested_size: int, device_free: int, frames: Iterable[Frame] = ()) -> None:
        """Out of memory: a request of `requested_size` bytes found `device_free` bytes left."""
        self._trace.append(
            {
                "action": "oom",
                "device_free": device_free,
                "size": requested_size,
                "stream": 0,
                "time_us": time.time_ns() // 1000,
                "frames": self._stack(frames),
            }
        )

    def snapshot(self) -> dict[str, Any]:
        """The recorded state and trace as `torch.cuda.memory._snapshot()` returns them."""
        traces: list[list[dict[str, Any]]] = [[] for _ in range(self.device)]
        traces.append(list(self._trace))
        return {
            "segments": [self._segment_dict(base) for base in self._bases],
            "device_traces": traces,
        }

    def dump(self, path: str | Path) -> Path:
        """Pickle `snapshot()` to `path`, as `torch.cuda.memory._dump_snapshot` does."""
        return _write(self.snapshot(), path)

    def _check_unused(self, address: int, size: int) -> None:
        """ValueError unless `size` bytes at `address` are positive and in no live segment."""
        if size <= 0:
            raise ValueError(f"segment size must be positive, got {size}")
        i = bisect.bisect_left(self._bases, address)
        after = self._bases[i] if i < len(self._bases) else None
        before = self._bases[i - 1] if i > 0 else None
        if (after is not None and address + size > after) or (
            before is not None and before + self._segments[before].size > address
        ):
            raise ValueError(f"segment at {address:#x} overlaps a live segment")

    def _join(self, first: int, second: int) -> None:
        """Make the mapped range at `second` part of the one at `first` where they are
        adjacent ranges of one pool's expandable segment."""
        a, b = self._segments[first], self._segments[second]
        if not (a.expandable and b.expandable and a.small == b.small):
            return
        if first + a.size != second:
            return
        a.size += b.size
        a.blocks.update(b.blocks)
        a.starts.extend(b.starts)
        del self._segments[second]
        self._bases.remove(second)

    def _segment_at(self, address: int) -> tuple[int, _Segment]:
        i = bisect.bisect_right(self._bases, address) - 1
        if i >= 0:
            base = self._bases[i]
            segment = self._segments[base]
            if address < base + segment.size:
                return base, segment
        raise ValueError(f"address {address:#x} is in no live segment")

    def _stack(self, frames: Iterable[Frame]) -> list[dict[str, Any]]:
        key = tuple(frames)
        stack = self._stacks.get(key)
        if stack is None:
            stack = [{"filename": f, "line": line, "name": name} for f, line, name in key]
            self._stacks[key] = stack
        return stack

    def _event(self, action: str, address: int, size: int, stack: list[dict[str, Any]]) -> None:
        self._trace.append(
            {
                "action": action,
                "addr": address,
                "size": size,
                "stream": 0,
                "time_us": time.time_ns() // 1000,
                "frames": stack,
            }
        )

    def _segment_dict(self, base: int) -> dict[str, Any]:
        segment = self._segments[base]
        blocks: list[dict[str, Any]] = []
        cursor = base
        for address in [*segment.starts, base + segment.size]:
            if address > cursor:
                blocks.append(_block_dict(cursor, address - cursor, 0, "inactive", []))
            block = segment.blocks.get(address)
            if block is not None:
                blocks.append(
                    _block_dict(
                        address, block.size, block.requested_size, "active_allocated", block.frames
                    )
                )
                cursor = address + block.size
        allocated = sum(b.size for b in segment.blocks.values())
        return {
            "device": self.device,
            "address": base,
            "total_size": segment.size,
            "allocated_size": allocated,
            "active_size": allocated,
            "requested_size": sum(b.requested_size for b in segment.blocks.values()),
            "stream": 0,
            "segment_type": "small" if segment.small else "large",
            "segment_pool_id": (0, 0),
            "is_expandable": segment.expandable,
            "frames": segment.frames,
            "blocks": blocks,
        }


def _block_dict(
    address: int, size: int, requested_size: int, state: str, frames: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "address": address,
        "size": size,
        "requested_size": requested_size,
        "state": state,
        "frames": frames,
    }


def _write(snapshot: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(snapshot, f, protocol=PICKLE_PROTOCOL)
    return path


def record_cuda_history(max_entries: int = CUDA_MAX_ENTRIES) -> None:
    """Start CUDA's allocator recorder: every event with its Python stack, the last `max_entries`.

    Call before the model is built so the snapshot shows the whole step; end with
    `dump_cuda_snapshot` or `stop_cuda_history`.
    """
    from pytest_gptcfg.engine import torchapi

    torchapi.record_memory_history(
        enabled="all", context="all", stacks="python", max_entries=max_entries
    )


def stop_cuda_history() -> None:
    """Stop CUDA's allocator recorder and drop what it recorded."""
    from pytest_gptcfg.engine import torchapi

    torchapi.record_memory_history(enabled=None)


def dump_cuda_snapshot(path: str | Path) -> Path:
    """Write CUDA's snapshot (all devices) to `path` for memory_viz, then stop the recorder."""
    from pytest_gptcfg.engine import torchapi

    try:
        snapshot = torchapi.memory_snapshot()
    finally:
        stop_cuda_history()
    return _write(snapshot, path)
