"""The simulation's shortcuts change no figure: the tracking fake mode sees what a tracker stacked
above a plain FakeTensorMode sees, its views are the fake mode's own, and the tensors it makes
again are those the fake mode makes."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode  # noqa: E402

from gptlint.runmodel.trainingrun import ModelShape, StepSpec  # noqa: E402
from pytest_gptcfg.engine import tracker as tracker_module  # noqa: E402
from pytest_gptcfg.engine.allocator import CachingAllocator  # noqa: E402
from pytest_gptcfg.engine.evalstep import run_evaluation  # noqa: E402
from pytest_gptcfg.engine.simulate import (  # noqa: E402
    CudaBehaviour,
    _Labeller,
    copy_labeller,
    track_model,
)
from pytest_gptcfg.engine.tracker import VIEW_OPS, StorageTracker  # noqa: E402
from pytest_gptcfg.engine.trainstep import (  # noqa: E402
    build_model,
    make_optimizers,
    random_batches,
    resolve_dtype,
    run_training,
)
from pytest_gptcfg.engine.usermodel import model_factory  # noqa: E402

aten = torch.ops.aten
DATA = Path(__file__).parent / "data"

SMALL = StepSpec(ModelShape(2, 4, 64, 64, 256, True, 0.1), 4, 64, 2, "float16", False)
"""float16 (GradScaler), dropout, flash attention on sm89 and mem-efficient on a T4."""

FORK_MODEL = """\
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 256
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = True


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.out = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        mask = torch.tril(torch.ones(config.block_size, config.block_size))
        self.register_buffer("mask", mask.view(1, 1, config.block_size, config.block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.qkv(self.ln_1(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(B, T, self.n_head, -1).permute(0, 2, 1, 3) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = self.drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits[:, -1:], None
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, foreach=True)
"""
"""A fork's model: attention by hand (masked_fill, softmax, dropout on the scores), chunk and
reshape and permute, tanh GELU, an untied head, its own AdamW (foreach, not fused)."""


@pytest.fixture(scope="module")
def fork_factory(tmp_path_factory):
    path = tmp_path_factory.mktemp("fork") / "model.py"
    path.write_text(FORK_MODEL)
    return model_factory(path)


def step_events(spec: StepSpec, compute_capability, stacked: bool, evaluate=False) -> list:
    """Every allocation and release of `spec`'s simulated step (or, `evaluate`, its eval_only
    evaluation), in order: through the tracking fake mode, or (`stacked`) a StorageTracker mode
    above a plain FakeTensorMode."""
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
        batches = random_batches(spec, "cpu")
        if evaluate:
            run_evaluation(model, batches, lambda: behaviour)
        else:
            optimizers = make_optimizers(model, spec, "cuda")
            scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
            observer = _Labeller(tracker, names)
            run_training(model, optimizers, scaler, batches, lambda: behaviour, spec, observer)
            del optimizers, scaler
        del model
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
        (dataclasses.replace(SMALL, dtype="bfloat16", gradient_accumulation_steps=1), (8, 0)),
        # head_dim 6: the math kernel on a T4
        (dataclasses.replace(SMALL, shape=ModelShape(2, 4, 24, 64, 256, True, 0.1)), (7, 5)),
        (dataclasses.replace(SMALL, model_factory=model_factory(DATA / "model.py")), (8, 9)),
        (dataclasses.replace(SMALL, model_factory="fork", dtype="bfloat16"), (8, 9)),
        (dataclasses.replace(SMALL, model_factory="fork", dtype="float32"), (8, 9)),
    ],
    ids=["fp16-sm89", "fp16-t4", "fp32", "bf16-a100", "math", "project-model", "fork", "fork-fp32"],
)
@pytest.mark.parametrize("evaluate", [False, True], ids=["step", "eval"])
def test_the_tracking_fake_mode_sees_what_a_stacked_tracker_sees(
    spec, compute_capability, evaluate, fork_factory
):
    if spec.model_factory == "fork":
        spec = dataclasses.replace(spec, model_factory=fork_factory)
    fused = step_events(spec, compute_capability, stacked=False, evaluate=evaluate)
    assert len(fused) > 50
    assert fused == step_events(spec, compute_capability, stacked=True, evaluate=evaluate)


def _described(func: object, t: torch.Tensor) -> tuple:
    """What the two comparisons of ops' outputs below hold of each output tensor: the op,
    the tensor's shape, strides, offset, dtype, device and whether it requires grad."""
    return (str(func), t.shape, t.stride(), t.storage_offset(), t.dtype, t.device, t.requires_grad)


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
                            *_described(func, t),
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


def test_an_op_called_again_gets_new_tensors_like_the_fake_modes(monkeypatch):
    """The tensors made again from an op's first outputs are those the fake mode gives: same
    metadata, each on a new storage of the same size; outputs it could not make alike (an
    input's storage, None among the outputs, a constant) are never made again."""
    aten = torch.ops.aten

    def calls():
        a = torch.empty(6, 8, dtype=torch.bfloat16)
        w = torch.nn.Parameter(torch.empty(8, 5))
        x = torch.empty(2, 3, 8).transpose(0, 1)  # not contiguous
        mean, rstd = torch.empty(3, 2, 1), torch.empty(3, 2, 1)
        return [
            (aten.mm.default, (a, w.to(torch.bfloat16)), {}),
            (aten._to_copy.default, (x,), {"dtype": torch.float16}),
            (aten.add.Tensor, (x, 1.5), {}),
            (aten.add.Tensor, (x.to(torch.int64), 1), {}),
            (aten.native_layer_norm.default, (x, [8], None, None, 1e-5), {}),
            (
                aten.native_layer_norm_backward.default,
                (x, x, [8], mean, rstd, None, None, [True, False, False]),
                {},
            ),
            (aten.split_with_sizes_copy.default, (x, [1, 1], 1), {}),
            (aten.clone.default, (x,), {}),
            (aten.clone.default, (x.contiguous(),), {}),  # same shape, other strides
            (aten.empty.memory_format, ([3, 4],), {"dtype": torch.float32, "device": "cpu"}),
            (aten.add_.Tensor, (a, a), {}),
        ]

    def run(remake: bool) -> list:
        if not remake:
            monkeypatch.setattr(tracker_module, "_makes_new_tensors", lambda func: False)
        seen = []
        tracker = StorageTracker(CachingAllocator(), logits_numel=-1)
        with tracker.fake_mode() as mode, torch.device("cpu"):
            for _ in range(3):
                for func, args, kwargs in calls():
                    out = func(*args, **kwargs)
                    outs = [out] if isinstance(out, torch.Tensor) else list(out)
                    inputs = {
                        t.untyped_storage()._cdata
                        for t in [*args, *kwargs.values()]
                        if isinstance(t, torch.Tensor)
                    }
                    seen.append(
                        [
                            None
                            if t is None
                            else (
                                *_described(func, t),
                                t.is_inference(),
                                t.untyped_storage().nbytes(),
                                t.untyped_storage()._cdata in inputs,
                            )
                            for t in outs
                        ]
                    )
            made = dict(mode._made)
        monkeypatch.undo()
        return seen, made

    again, made = run(remake=True)
    assert again == run(remake=False)[0]
    remade = {key[0] for key, entry in made.items() if entry}
    assert aten.mm.default in remade and aten.native_layer_norm.default in remade
    assert aten.empty.memory_format in remade
    not_remade = {key[0] for key, entry in made.items() if not entry}
    assert aten.native_layer_norm_backward.default in not_remade  # two outputs are None
    assert aten.add_.Tensor not in remade  # in place: not an op that makes new tensors
