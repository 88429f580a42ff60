"""The simulation's shortcuts change no figure: the tracking fake mode sees what a tracker stacked
above a plain FakeTensorMode sees, and its views are the fake mode's own."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode  # noqa: E402

from gptlint.run import ModelShape, StepSpec  # noqa: E402
from pytest_gptcfg.engine import tracker as tracker_module  # noqa: E402
from pytest_gptcfg.engine.allocator import CachingAllocator  # noqa: E402
from pytest_gptcfg.engine.simulate import (  # noqa: E402
    CudaBehaviour,
    _Labeller,
    copy_labeller,
    track_model,
)
from pytest_gptcfg.engine.tracker import VIEW_OPS, StorageTracker  # noqa: E402
from pytest_gptcfg.engine.trainstep import (  # noqa: E402
    build_model,
    make_optimizer,
    random_batches,
    resolve_dtype,
    run_training,
)
from pytest_gptcfg.engine.usermodel import model_factory  # noqa: E402

aten = torch.ops.aten
DATA = Path(__file__).parent / "data"

SMALL = StepSpec(ModelShape(2, 4, 64, 64, 256, True, 0.1), 4, 64, 2, "float16", False)
"""float16 (GradScaler), dropout, flash attention on sm89 and mem-efficient on a T4."""


def step_events(spec: StepSpec, compute_capability, stacked: bool) -> list[tuple]:
    """Every allocation and release of `spec`'s simulated step, in order: through the tracking
    fake mode, or (`stacked`) a StorageTracker mode above a plain FakeTensorMode."""
    dtype = resolve_dtype(spec.dtype)
    allocator = CachingAllocator()
    tracker = StorageTracker(allocator, spec.batch_size * spec.block_size * spec.shape.vocab_size)
    names: dict[int, str] = {}
    lower = None if dtype == torch.float32 else dtype
    behaviour = CudaBehaviour(lower, compute_capability, copy_labeller(tracker, names))
    modes = (FakeTensorMode(), tracker) if stacked else (tracker.fake_mode(),)
    with contextlib.ExitStack() as stack:
        for mode in (*modes, torch.device("cpu")):
            stack.enter_context(mode)
        model = build_model(spec)
        track_model(tracker, model, compute_capability, names)
        optimizer = make_optimizer(model, spec, "cuda")
        scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
        batches = random_batches(spec, "cpu")
        observer = _Labeller(tracker, names)
        run_training(model, optimizer, scaler, batches, lambda: behaviour, spec, observer)
        del model, optimizer, scaler
    events = [
        (created, a.nbytes, a.size, a.category, a.description, a.block.segment, a.block.offset)
        for created, a in tracker._events
    ]
    return [*events, ("peaks", allocator.peak_allocated, allocator.peak_reserved)]


@pytest.mark.parametrize(
    ("spec", "compute_capability"),
    [
        (SMALL, (8, 9)),
        (SMALL, (7, 5)),
        (dataclasses.replace(SMALL, dtype="float32"), (8, 9)),
        # head_dim 6: the math kernel on a T4
        (dataclasses.replace(SMALL, shape=ModelShape(2, 4, 24, 64, 256, True, 0.1)), (7, 5)),
        (dataclasses.replace(SMALL, model_factory=model_factory(DATA / "model.py")), (8, 9)),
    ],
    ids=["fp16-sm89", "fp16-t4", "fp32", "math", "project-model"],
)
def test_the_tracking_fake_mode_sees_what_a_stacked_tracker_sees(spec, compute_capability):
    fused = step_events(spec, compute_capability, stacked=False)
    assert len(fused) > 100
    assert fused == step_events(spec, compute_capability, stacked=True)


def test_its_views_are_the_fake_modes_own(monkeypatch):
    """Each view op taken directly on the meta storage gives the tensor the fake mode makes."""

    def inputs():
        p = torch.nn.Parameter(torch.empty(6, 8))
        x = torch.empty(4, 6, 8, dtype=torch.bfloat16)
        y = torch.empty(8, 6).t()  # not contiguous
        z = torch.empty(40)[4:28].view(4, 6)  # storage offset
        return p, x, y, z

    cases = [
        (aten.view.default, lambda p, x, y, z: (x, [24, 8])),
        (aten.view.default, lambda p, x, y, z: (p, [48])),
        (aten._unsafe_view.default, lambda p, x, y, z: (x, [4, 48])),
        (aten.t.default, lambda p, x, y, z: (p,)),
        (aten.t.default, lambda p, x, y, z: (z,)),
        (aten.transpose.int, lambda p, x, y, z: (x, 1, 2)),
        (aten.detach.default, lambda p, x, y, z: (p,)),
        (aten.alias.default, lambda p, x, y, z: (y,)),
        (aten.expand.default, lambda p, x, y, z: (z[:1], [3, 6])),
        (aten.permute.default, lambda p, x, y, z: (x, [2, 0, 1])),
        (aten.split.Tensor, lambda p, x, y, z: (x, 4, 2)),
        (aten.split_with_sizes.default, lambda p, x, y, z: (z, [1, 3])),
        (aten.slice.Tensor, lambda p, x, y, z: (y, 1, 2, 5)),
        (aten.select.int, lambda p, x, y, z: (x, 0, 3)),
        (aten.unsqueeze.default, lambda p, x, y, z: (z, 1)),
        (aten.squeeze.dim, lambda p, x, y, z: (z[:1], 0)),
        (aten.unbind.int, lambda p, x, y, z: (y, 1)),
    ]
    assert {func for func, _ in cases} == VIEW_OPS

    def run(direct: bool) -> list[tuple]:
        if not direct:
            monkeypatch.setattr(tracker_module, "VIEW_OPS", frozenset())
        seen = []
        tracker = StorageTracker(CachingAllocator(), logits_numel=-1)
        with tracker.fake_mode(), torch.device("cpu"):
            for func, make_args in cases:
                args = make_args(*inputs())
                out = func(*args)
                for t in [out] if isinstance(out, torch.Tensor) else out:
                    assert type(t) is FakeTensor
                    seen.append(
                        (
                            str(func),
                            t.shape,
                            t.stride(),
                            t.storage_offset(),
                            t.dtype,
                            t.device,
                            t.requires_grad,
                            t.is_conj(),
                            t.is_neg(),
                            t._is_view(),
                            type(t.grad_fn).__name__,
                            t.untyped_storage()._cdata == args[0].untyped_storage()._cdata,
                        )
                    )
        monkeypatch.undo()
        return seen

    direct = run(direct=True)
    assert all(row[-1] for row in direct)  # every one a view of its input's storage
    assert direct == run(direct=False)
