"""The compiled training step, simulated: Inductor's planned graphs inside train.py's loop.

`compiled.plan_at` gives the forward and backward graphs' allocations and frees at a batch size
as plain data, from graphs `compiled.capture_graphs` captured once per model shape with the
batch as a symbol (both cached on disk here: `plan_for`, `plan_cache_dir`; a lone check on a
cold cache captures its batch alone while those are captured beside it). This module runs
nanoGPT's training step (`trainstep.run_training`: micro-steps, GradScaler, clipping, fused
AdamW, `zero_grad`) on fake tensors as the eager simulation does, with the model's forward
replaced by one autograd Function that replays the planned forward graph and whose backward
replays the planned backward graph. So everything around the graphs is the real thing on fake
tensors: the previous iteration's logits stay alive through the next forward (train.py holds
them), autograd materialises a zero gradient for the unused `logits` output and holds it and
the loss gradient until the backward graph returns, the backward's gradients are accumulated
into `.grad` (stolen on the first micro-step, added and freed on the next), AdamW's state is
created by the first step, and `zero_grad(set_to_none=True)` frees the gradients; the storage
tracker and the caching-allocator model see all of it, in order, with the graphs' buffers.

A saved activation is freed at its last use in the backward graph (AOTAutograd clears the
context before calling it); the forward's inputs it saves (the batch) at theirs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import torch

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.estimate import estimate_memory
from gptlint.runmodel.trainingrun import GPU_DEVICE_TYPE, StepSpec
from pytest_gptcfg.engine import compiled, forked, kernels, torchapi
from pytest_gptcfg.engine.allocator import CachingAllocator
from pytest_gptcfg.engine.simulate import (
    _Labeller,
    build_fake_model,
    simulated_note,
    simulated_result,
    track_model,
)
from pytest_gptcfg.engine.snapshot import SnapshotRecorder
from pytest_gptcfg.engine.tracker import Allocation, StorageTracker
from pytest_gptcfg.engine.trainstep import (
    make_optimizers,
    random_batches,
    resolve_dtype,
    run_training,
)
from pytest_gptcfg.engine.usermodel import ModelFactory
from pytest_gptcfg.results import MemoryResult

if sys.platform != "win32":
    import fcntl

CompiledUnavailable = compiled.CompiledUnavailable

MAX_LAYERS = 48
"""Deepest model planned compiled: Inductor's time grows with the graph (about a second per
layer on one core); deeper models are simulated eager, with a note."""

MAX_GRAPH_TOKENS_X_VOCAB = 2**40
"""Largest B x T x vocab planned compiled (a sanity bound on the plan's sizes)."""


def plan_cache_dir() -> Path:
    """Where plans are kept: `$GPTCFG_CACHE_DIR`, else `$XDG_CACHE_HOME/gptcfg/compiled`, else
    `~/.cache/gptcfg/compiled`."""
    own = os.environ.get("GPTCFG_CACHE_DIR")
    if own:
        return Path(own)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gptcfg" / "compiled"


def plan_key(spec: StepSpec, kernel: AttentionKernel) -> dict[str, Any] | None:
    """What a plan depends on: torch, the planner's code (`compiled.planner_digest`), the model
    (nanoGPT's, or the digest of a project's model.py), its shape, batch, block, dtype and
    attention kernel (nothing else of the spec enters the graphs; the graphs of every batch
    are keyed by the same, less the batch). None where the model cannot be named: such a plan
    is not cached."""
    s = spec.shape
    model = "nanogpt"
    if spec.model_factory is not None:
        if not isinstance(spec.model_factory, ModelFactory):
            return None
        model = spec.model_factory.digest
    return {
        "model": model,
        "planner": compiled.planner_digest(),
        "torch": torch.__version__,
        "shape": [s.n_layer, s.n_head, s.n_embd, s.vocab_size, bool(s.bias), float(s.dropout)],
        "batch_size": spec.batch_size,
        "block_size": spec.block_size,
        "dtype": spec.dtype,
        "kernel": str(kernel),
    }


def _cache_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return plan_cache_dir() / f"plan-{digest}.json"


def read_cached(key: dict[str, Any]) -> dict[str, Any] | None:
    """The plan cached under `key`, None if there is none (or it cannot be read)."""
    path = _cache_path(key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    plan = data.get("plan")
    return plan if isinstance(plan, dict) else None


def write_cached(key: dict[str, Any], plan: dict[str, Any]) -> None:
    """Cache `plan` under `key`, atomically (a temporary file in the same folder, then a
    rename), so that concurrent workers never read half a file; a cache that cannot be
    written is skipped."""
    path = _cache_path(key)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".plan-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"key": key, "plan": plan}, f)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


STALE_TEMPORARY_SECONDS = 600
"""How old a plan's temporary file is when no writer can still be writing it (a plan is
written in well under a second): one whose writer was killed midway (a fork made to plan
ahead, stopped when pytest exits)."""


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files in `folder` that writers killed midway left."""
    stale = time.time() - STALE_TEMPORARY_SECONDS
    for leftover in folder.glob(".plan-*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < stale:
                leftover.unlink()


def _lock_file(key: dict[str, Any]) -> BinaryIO | None:
    """The open lock file of `key`'s cache entry (beside it, hidden), None where the platform
    has no `fcntl` (Windows: each worker plans its own) or the file cannot be opened."""
    if sys.platform == "win32":
        return None
    plan = _cache_path(key)
    path = plan.with_name(f".{plan.stem}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+b")  # the caller closes it
    except OSError:
        return None


@contextlib.contextmanager
def _exclusive(key: dict[str, Any]) -> Iterator[None]:
    """Hold the cache's lock for `key` (where the platform has `fcntl`): a second process
    (a pytest-xdist worker, or the session's process while a fork beside it makes that plan
    ahead) that needs the same graphs or plan waits for the first's, then reads it from the
    cache, rather than making it again; while it waits, its core is lent to the process it
    waits for (`forked.waiting`). A lock that cannot be had is skipped."""
    handle = _lock_file(key)
    if handle is None:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process makes it: wait, lending this core
            with forked.waiting(), contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass
        yield


SYMBOLIC_TOKENS = 65536
"""The graphs of every batch are captured at the batch of this many tokens (`symbolic_hint`)."""


def symbolic_hint(row_tokens: int) -> int:
    """The batch size the graphs of every batch are captured at, for rows of `row_tokens`
    tokens: the one that holds `SYMBOLIC_TOKENS` (at least 2). Inductor's heuristics read the
    symbol's example value (graphs of a small GPT captured at a batch of 2 are not those
    captured at 8 or 32), and a choice that matters to the graphs is guarded (`plan_at`
    refuses a batch outside the guards); so the example is a training-sized batch, and one
    number for a model shape whatever batch asked first: the same graphs on every machine and
    in every order of checks."""
    return max(2, -(-SYMBOLIC_TOKENS // max(row_tokens, 1)))


SYMBOLIC_BATCH = True
"""Whether graphs are captured with the batch as a symbol (`plan_for`); off, each batch is
captured alone, as before one capture served every batch (`benchmarks/batch_plans.py` turns
it off to compare the two)."""

CAPTURE_BESIDE = True
"""Whether a check of one batch on a cold cache, with a core idle, captures its batch alone
while the graphs of every batch are captured beside it (`plan_for`'s `alone`); tests that
count captures turn it off (whether a core is idle is the machine's, not the test's)."""


def _graphs_key(key: dict[str, Any]) -> dict[str, Any]:
    """The key of the graphs that serve every batch size of `key`'s plans."""
    return {**key, "batch_size": "symbolic", "what": "graphs"}


def plan_for(
    key: dict[str, Any] | None,
    batch: int,
    row_tokens: int,
    target: Callable[[int], compiled.Target],
    alone: bool = False,
) -> tuple[dict[str, Any], str]:
    """The compiled step's plan at `batch` (`key`, which names it, includes the batch; None:
    not cached), and where it came from: 'cache' (the plan itself), 'graphs' (the cached
    graphs of every batch, planned at this one), 'captured' (Inductor ran now) or 'alone'
    (Inductor ran now for this batch, and for every batch in a fork beside).

    One capture serves every batch of 2 or more: the graphs are captured with the batch as a
    symbol (`compiled.capture_graphs` of `target(symbolic_hint(row_tokens))`, rows of
    `row_tokens` tokens) and cached without the batch; each batch's plan is made from them
    (`compiled.plan_at`, a fraction of a second) and cached. A batch of 1, a batch where the
    graphs' guards do not hold (a forward that branches on the batch size), and a model whose
    graphs cannot be captured or planned with a symbolic batch (the reason is cached, so the
    capture is tried once) are captured for their batch alone (`target(batch)`). A process
    that needs what another is making (pytest-xdist workers) waits for it (`_exclusive`) and
    reads it from the cache.

    `alone`: the caller wants this batch only (no search of other batches follows). Where the
    graphs of every batch are neither cached nor being made and a core is idle, this batch is
    captured alone, as a static batch, while those graphs are captured in a fork beside this
    process (`_graphs_beside`): a capture with the batch as a symbol costs more than one with
    a number (GPT-2's, 40% more: Dynamo and AOTAutograd trace each size expression), and the
    check waits only for its own. Its plan is the one Inductor makes for a run at that batch
    (nanoGPT's train.py compiles with a batch that never changes); a plan from the graphs of
    every batch peaks the same or within 1% (`benchmarks/batch_plans.py`: where sizes that
    are numbers coincide, Inductor may reuse a buffer more), so the first batch checked on a
    cold cache may differ that much from the one it would have had from those graphs. Later
    batches wait for the fork's graphs."""
    if key is None:
        return _plan_alone(target, batch), "captured"
    plan = read_cached(key)
    if plan is not None:
        return plan, "cache"
    beside = alone and _graphs_beside(_graphs_key(key), batch, row_tokens, target)
    with _exclusive(key):
        plan = read_cached(key)  # made by another process meanwhile
        if plan is not None:
            return plan, "cache"
        if beside:
            plan, source = _plan_alone(target, batch), "alone"
        else:
            plan, source = _from_graphs(_graphs_key(key), batch, row_tokens, target)
            if plan is None:
                plan, source = _plan_alone(target, batch), "captured"
        write_cached(key, plan)
    return plan, source


def _plan_alone(target: Callable[[int], compiled.Target], batch: int) -> dict[str, Any]:
    """The plan at `batch` from graphs captured for that batch alone."""
    return compiled.plan_at(compiled.capture_graphs(target(batch)), batch)


def _from_graphs(
    graphs_key: dict[str, Any],
    batch: int,
    row_tokens: int,
    target: Callable[[int], compiled.Target],
) -> tuple[dict[str, Any] | None, str]:
    """The plan at `batch` from the graphs of every batch (cached under `graphs_key`, or
    captured now), and where they came from; None where they do not serve this batch (outside
    their guards, or a plan of them failed its checks: a capture of the batch alone may
    not)."""
    if not SYMBOLIC_BATCH or batch < 2:
        return None, "captured"
    graphs, source = _graphs(graphs_key, row_tokens, target)
    if "refused" in graphs:
        return None, source
    try:
        return compiled.plan_at(graphs, batch), source
    except compiled.CompiledUnavailable:
        return None, source


def _graphs(
    graphs_key: dict[str, Any], row_tokens: int, target: Callable[[int], compiled.Target]
) -> tuple[dict[str, Any], str]:
    """The graphs of every batch (`{"refused": why}` where they cannot be captured so) and
    where they came from: 'graphs' (the cache) or 'captured' (now, and cached)."""
    with _exclusive(graphs_key):
        graphs = read_cached(graphs_key)
        if graphs is not None:
            return graphs, "graphs"
        graphs = _capture_graphs(graphs_key, row_tokens, target)
    return graphs, "captured"


def _capture_graphs(
    graphs_key: dict[str, Any], row_tokens: int, target: Callable[[int], compiled.Target]
) -> dict[str, Any]:
    """The graphs of every batch captured now and cached (`{"refused": why}` where they
    cannot be captured so), by the holder of their lock."""
    try:
        graphs = compiled.capture_graphs(target(symbolic_hint(row_tokens)), True)
    except compiled.CompiledUnavailable as why:
        graphs = {"refused": str(why)}
    write_cached(graphs_key, graphs)
    return graphs


def _graphs_beside(
    graphs_key: dict[str, Any],
    batch: int,
    row_tokens: int,
    target: Callable[[int], compiled.Target],
) -> bool:
    """Whether the graphs of every batch are now captured in a fork beside this process
    (`forked.beside`, at the lowest priority): where they would serve `batch`, are neither
    cached nor locked by another process that makes them, and a core is idle (spare, and no
    other fork of this process works beside it). The fork is made holding their lock, which
    this process then lets go of: the fork holds it until it has cached them, so that a
    process that needs them (this one, for another batch) waits for them and reads them."""
    if not (SYMBOLIC_BATCH and CAPTURE_BESIDE) or batch < 2:
        return False
    if forked.spare_cores() < 1 or forked.working_beside():
        return False
    handle = _lock_file(graphs_key)
    if handle is None:
        return False
    with handle:  # closed here; the fork's copy of it keeps the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process makes them
            return False
        if read_cached(graphs_key) is not None:
            return False
        torchapi.load_compiler()  # before the fork: it and this process's capture need it
        work = functools.partial(_capture_graphs, graphs_key, row_tokens, target)
        return forked.beside([work], autograd=True) is not None


def get_plan(
    spec: StepSpec, kernel: AttentionKernel, alone: bool = False
) -> tuple[dict[str, Any], str]:
    """The plan for `spec` and where it came from (`plan_for`; `alone`: no other batch is
    wanted next)."""
    return plan_for(
        plan_key(spec, kernel), spec.batch_size, spec.block_size, _target(spec, kernel), alone
    )


def _target(spec: StepSpec, kernel: AttentionKernel) -> Callable[[int], compiled.Target]:
    """nanoGPT's compiled step of `spec` (or its project's model) at a batch size."""
    dtype = resolve_dtype(spec.dtype)
    lower = None if dtype == torch.float32 else dtype
    return lambda batch: compiled.nanogpt_target(spec, batch, lower, kernel)


def _kernel(spec: StepSpec, profile: GpuProfile) -> AttentionKernel:
    """The attention kernel `spec`'s step runs on `profile`'s GPU."""
    shape, dtype = spec.shape, resolve_dtype(spec.dtype)
    return kernels.attention_kernel(
        profile.compute_capability, dtype, shape.head_dim, shape.dropout
    )


def unsupported_reason(spec: StepSpec, kernel: AttentionKernel) -> str | None:
    """Why `spec`'s compiled step is not simulated (None when it is)."""
    if spec.shape.n_layer > MAX_LAYERS:
        return (
            f"n_layer {spec.shape.n_layer} > {MAX_LAYERS}: planning it with Inductor would take "
            "too long"
        )
    if spec.tokens * spec.shape.vocab_size > MAX_GRAPH_TOKENS_X_VOCAB:
        return "B x T x vocab beyond the compiled simulation's bound"
    return None


def plan_note(plan: dict[str, Any], source: str) -> str:
    """The note of a step simulated compiled: how the plan was made, and where it came from
    (`plan_for`'s `source`)."""
    seconds = f"{plan.get('seconds', 0):.0f} s"
    made = {
        "cache": "plan from the cache",
        "graphs": "planned from the cached graphs",
        "captured": f"planned in {seconds} and cached in {plan_cache_dir()}",
        "alone": (
            f"planned in {seconds} for this batch size alone (the graphs of every batch size "
            f"are captured beside it) and cached in {plan_cache_dir()}"
        ),
    }[source]
    batches = "; the graphs serve every batch size of 2 or more" if plan.get("symbolic") else ""
    return (
        "torch.compile simulated: Inductor's memory plan of the forward and backward graphs, "
        f"made with its CPU backend (the CUDA backend's plan is taken to match); {made}{batches}"
    )


class PlanRuntime:
    """Replays a plan's events into the storage tracker as the step calls the graphs; each
    storage of the graphs is named by `category` (nanoGPT's breakdown keys here)."""

    def __init__(self, plan: dict[str, Any], tracker: StorageTracker, logits_numel: int) -> None:
        self.plan = plan
        self.tracker = tracker
        self.logits_numel = logits_numel
        self.weight_numels: set[int] = set()
        self._next = -1000

    def _key(self) -> int:
        self._next -= 1
        return self._next

    def category(self, sid: str, nbytes: int, dtype: str) -> str:
        """The breakdown key of the graphs' storage `sid` of `nbytes` bytes of `dtype`."""
        itemsize = getattr(getattr(torch, dtype, None), "itemsize", None)
        numel = nbytes // itemsize if itemsize else None
        if nbytes in (2 * self.logits_numel, 4 * self.logits_numel) and (
            numel is None or numel == self.logits_numel
        ):
            return "logits_and_loss"
        if dtype in ("bfloat16", "float16") and numel in self.weight_numels:
            return "weight_copies"
        return "activations"

    def _alloc(self, keys: dict[str, int], sid: str, nbytes: int, dtype: str, graph: str) -> None:
        category = self.category(sid, nbytes, dtype)
        name = sid.split(":", 1)[1]
        description = f"{dtype or 'kernel output'} {name} of the compiled {graph} graph"
        key = self._key()
        self.tracker.add(key, Allocation(nbytes, category, description))
        keys[sid] = key

    def forward(
        self, ctx: Any, inputs: tuple[torch.Tensor | int, ...]
    ) -> tuple[torch.Tensor | None, ...]:
        keys: dict[str, int] = {}
        outputs: list[torch.Tensor | None] = [None] * len(self.plan["outputs"])
        for event in self.plan["fw"]:
            kind, sid = event[0], event[1]
            if kind == "alloc":
                self._alloc(keys, sid, event[2], event[3], "forward")
            elif kind == "free":
                self.tracker.release(keys.pop(sid))
            elif kind == "output":
                shape, dtype = self.plan["outputs"][event[2]]
                outputs[event[2]] = torch.empty(shape, dtype=getattr(torch, dtype[6:]))
        ctx.runtime = self
        ctx.keys = keys
        ctx.inputs = list(inputs)
        ctx.shapes = [(t.shape, t.dtype) if isinstance(t, torch.Tensor) else None for t in inputs]
        return tuple(outputs)

    def backward(self, ctx: Any) -> list[torch.Tensor | None]:
        keys: dict[str, int] = ctx.keys
        grads: list[torch.Tensor | None] = [None] * len(ctx.shapes)
        for event in self.plan["bw"]:
            kind, sid = event[0], event[1]
            if kind == "alloc":
                self._alloc(keys, sid, event[2], event[3], "backward")
            elif kind == "free":
                self.tracker.release(keys.pop(sid))
            elif kind == "release":
                ctx.inputs[int(sid.split(":")[1])] = None
            elif kind == "grad":
                shape, dtype = ctx.shapes[event[2]]  # a size has no gradient event
                grads[event[2]] = torch.empty(shape, dtype=dtype)
        for key in keys.values():  # nothing should be left; never leak if something is
            self.tracker.release(key)
        ctx.keys, ctx.inputs = {}, []
        return grads


class PlannedGraphs(torch.autograd.Function):
    """The compiled forward and backward graphs, as allocation plans."""

    @staticmethod
    def forward(ctx: Any, runtime: PlanRuntime, *inputs: torch.Tensor) -> Any:
        return runtime.forward(ctx, inputs)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:
        return (None, *ctx.runtime.backward(ctx))


def graph_inputs(
    model: torch.nn.Module, specs: list[dict[str, Any]]
) -> Callable[[tuple[torch.Tensor, ...]], list[torch.Tensor | int]]:
    """What the planned graphs are called with (a plan's `inputs`), for a batch: the model's
    parameters and buffers (found by name once, here), the batch's tensors, and its size where
    the graphs take it as a symbol."""
    named: dict[str, dict[str, Any]] = {
        "param": dict(model.named_parameters(remove_duplicate=False)),
        "buffer": dict(model.named_buffers(remove_duplicate=False)),
    }
    of_model = {i: named[s["kind"]][s["name"]] for i, s in enumerate(specs) if s["kind"] in named}

    def inputs(batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor | int]:
        found: list[torch.Tensor | int] = []
        for i, spec in enumerate(specs):
            if i in of_model:
                found.append(of_model[i])
            elif spec["kind"] == "data":
                found.append(batch[spec["index"]])
            else:  # the batch size, a symbol of the graphs
                found.append(int(batch[0].size(0)))
        return found

    return inputs


def _compiled_forward(model: torch.nn.Module, runtime: PlanRuntime) -> Any:
    inputs = graph_inputs(model, runtime.plan["inputs"])

    def forward(idx: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        batch = (idx, targets)  # train.py always passes the targets
        logits, loss, *_ = PlannedGraphs.apply(runtime, *inputs(batch))  # type: ignore[arg-type]
        return logits, loss  # the rest: Python drops them

    return forward


ROOM_FOR_ALONE = 0.95
"""The share of the budget below which gptlint's estimate of a step says it fits with room,
so no search of the largest batch is likely to follow its check (`simulate_compiled`)."""


def simulate_compiled(
    spec: StepSpec,
    profile: GpuProfile,
    budget_bytes: int,
    recorder: SnapshotRecorder | None = None,
    searching: bool = False,
) -> MemoryResult:
    """Simulate `spec`'s step as torch.compile runs it; `CompiledUnavailable` says why not.
    `searching`: a search of other batch sizes follows whatever the verdict. Without it, and
    where gptlint's estimate says the step fits with room (a search follows a step that does
    not fit), the plan is made for this batch alone on a cold cache (`plan_for`'s `alone`)."""
    dtype = resolve_dtype(spec.dtype)
    kernel = _kernel(spec, profile)
    reason = unsupported_reason(spec, kernel)
    if reason is not None:
        raise CompiledUnavailable(reason)
    alone = not searching and estimate_memory(spec, profile).total <= ROOM_FOR_ALONE * budget_bytes
    plan, source = get_plan(spec, kernel, alone)
    context = profile.context_bytes
    notes = [simulated_note(profile), plan_note(plan, source)]
    untested = compiled.untested_release()
    if untested is not None:
        notes.append(f"{untested}; its plan passed the checks")
    allocator = CachingAllocator(limit=max(budget_bytes - context, 0), recorder=recorder)
    logits_numel = spec.batch_size * spec.block_size * spec.shape.vocab_size
    tracker = StorageTracker(allocator, logits_numel)
    runtime = PlanRuntime(plan, tracker, logits_numel)
    names: dict[int, str] = {}
    with tracker.fake_mode() as fake, torch.device("cpu"):
        model, params = build_fake_model(fake, spec)
        runtime.weight_numels = {p.numel() for p in model.parameters() if p.dim() >= 2}
        track_model(tracker, model, profile.compute_capability, names)
        model.forward = _compiled_forward(model, runtime)
        optimizers = make_optimizers(model, spec, GPU_DEVICE_TYPE)
        scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
        run_training(
            model,
            optimizers,
            scaler,
            random_batches(spec, "cpu"),
            contextlib.nullcontext,
            spec,
            _Labeller(tracker, names),
        )
        del model, optimizers, scaler
    if dtype == torch.float16:
        notes.append("float16: GradScaler enabled, as train.py does")
    peak = tracker.at_peak()
    result = simulated_result(
        spec, profile, budget_bytes, allocator, peak, context, {kernel}, notes, params=params
    )
    result.compiled = True
    return result
