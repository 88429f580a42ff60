"""One capture of the compiled graphs serves every batch size: the batch is a symbol."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gptlint.facts.gpus import get_profile  # noqa: E402
from gptlint.runmodel.estimate import estimate_memory  # noqa: E402
from gptlint.runmodel.trainingrun import ModelShape, StepSpec  # noqa: E402
from pytest_gptcfg.engine import compiled, compiledstep, forked  # noqa: E402
from pytest_gptcfg.engine.check import check_memory, find_max_batch_size  # noqa: E402
from pytest_gptcfg.engine.usermodel import model_factory  # noqa: E402

pytestmark = pytest.mark.slow  # Inductor captures graphs (seconds each, cold)

GiB = 1024**3
A100 = get_profile("a100-80gb")
WIDE = StepSpec(ModelShape(1, 2, 64, 256, 8192, False, 0.0), 32, 256, 1, "bfloat16", True)
HINT = compiledstep.symbolic_hint(256)  # 256 rows: 64Ki tokens
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path / "plans"))


@pytest.fixture
def captures(monkeypatch):
    """Each capture of graphs, as (batch the target is built at, symbolic)."""
    made: list[tuple[int, bool]] = []
    capture = compiled.capture_graphs

    def counted(target, symbolic=False):
        made.append((int(target.batch[0].size(0)), symbolic))
        return capture(target, symbolic)

    monkeypatch.setattr(compiled, "capture_graphs", counted)
    return made


def simulate(spec, budget=80 * GiB):
    return check_memory(spec, A100, budget, mode="simulate")


def plan_note(result):
    return next(n for n in result.notes if n.startswith("torch.compile simulated"))


def test_one_capture_serves_every_batch_size(captures):
    results = {b: simulate(dataclasses.replace(WIDE, batch_size=b)) for b in (32, 20, 48)}
    assert captures == [(HINT, True)]
    assert "planned in" in plan_note(results[32])
    assert "planned from the cached graphs" in plan_note(results[20])
    assert all("serve every batch size" in plan_note(r) for r in results.values())
    peaks = [results[b].peak_allocated_bytes for b in (20, 32, 48)]
    assert peaks[0] < peaks[1] < peaks[2]
    again = simulate(dataclasses.replace(WIDE, batch_size=20))
    assert "plan from the cache" in plan_note(again)
    assert again.peak_allocated_bytes == results[20].peak_allocated_bytes


@pytest.mark.parametrize("batch", [20, 32])
def test_a_batch_planned_from_the_shared_graphs_peaks_as_its_own_capture(monkeypatch, batch):
    spec = dataclasses.replace(WIDE, batch_size=batch)
    shared = simulate(spec)
    monkeypatch.setattr(compiledstep, "SYMBOLIC_BATCH", False)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", os.environ["GPTCFG_CACHE_DIR"] + "-static")
    own = simulate(spec)
    assert "serve every batch size" not in plan_note(own)
    assert shared.peak_allocated_bytes == own.peak_allocated_bytes
    assert shared.peak_reserved_bytes == own.peak_reserved_bytes
    assert shared.breakdown == own.breakdown


def test_the_largest_batch_search_captures_nothing_more(captures):
    budget = 2 * GiB
    known = simulate(WIDE, budget)
    probed: list[int] = []
    best = find_max_batch_size(WIDE, A100, budget, known=known, probed=probed)
    assert len(probed) >= 2 and 17 <= WIDE.batch_size < best  # where the graphs hold
    assert captures == [(HINT, True)]


def test_a_batch_of_one_is_captured_for_itself(captures):
    result = simulate(dataclasses.replace(WIDE, batch_size=1))
    assert result.compiled and "serve every batch size" not in plan_note(result)
    assert captures == [(1, False)]


def branching(condition):
    """A forward that doubles its embeddings where the batch size meets `condition`."""
    return f"""
    x = self.wte(idx)
    if idx.size(0) {condition}:  # a forward that depends on the batch size
        x = x * 2
    logits = self.head(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
    return logits, loss
"""


def test_a_batch_where_the_graphs_guards_fail_is_captured_for_itself(head_model, captures):
    """Graphs traced through `if batch > 16` hold where it is true; a batch of 8 is not."""
    model = head_model(branching("> 16"), block_size=256)
    spec = dataclasses.replace(WIDE, model_factory=model_factory(model))
    shared = simulate(spec)
    own = simulate(dataclasses.replace(spec, batch_size=8))
    assert shared.compiled and own.compiled and not own.upper_bound
    assert "serve every batch size" in plan_note(shared)
    assert "serve every batch size" not in plan_note(own)
    assert captures == [(HINT, True), (8, False)]


def test_a_model_that_needs_its_batch_size_is_captured_per_batch(head_model, captures):
    model = head_model(branching("== 256"), block_size=256)  # Dynamo specialises the batch
    spec = dataclasses.replace(WIDE, model_factory=model_factory(model))
    first = simulate(spec)
    second = simulate(dataclasses.replace(spec, batch_size=20))
    assert first.compiled and second.compiled and not first.upper_bound
    assert "serve every batch size" not in plan_note(first)
    # the symbolic capture is refused once (the reason is cached), then each batch alone
    assert captures == [(HINT, True), (32, False), (20, False)]


def test_the_graphs_guards_leave_out_kernel_bodies(monkeypatch):
    """Inductor's C++ backend chooses how a kernel sums a reduction by the example batch; the
    choice is inside the kernel, so it is not a guard: a small batch shares the graphs, and
    peaks within 1% of its own capture (whose sizes, all numbers, can coincide where the
    symbolic ones differ, letting Inductor reuse a buffer more)."""
    spec = dataclasses.replace(WIDE, batch_size=2)
    shared = simulate(spec)
    assert "serve every batch size" in plan_note(shared)
    monkeypatch.setattr(compiledstep, "SYMBOLIC_BATCH", False)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", os.environ["GPTCFG_CACHE_DIR"] + "-own")
    own = simulate(spec)
    assert shared.peak_allocated_bytes == pytest.approx(own.peak_allocated_bytes, rel=0.01)
    assert shared.peak_reserved_bytes == pytest.approx(own.peak_reserved_bytes, rel=0.01)


@pytest.fixture
def idle_core(monkeypatch):
    """A lone check on a cold cache captures its batch alone, the graphs of every batch
    captured beside it, as where a core is idle."""
    monkeypatch.setattr(compiledstep, "CAPTURE_BESIDE", True)
    monkeypatch.setattr(forked, "spare_cores", lambda: 1)
    if not forked.autograd_forks():
        pytest.skip("no fork here that can run a backward: nothing is captured beside")


def test_a_lone_check_captures_its_batch_while_the_graphs_of_every_batch_are_captured_beside(
    idle_core, captures, monkeypatch
):
    first = simulate(WIDE)
    assert "planned in" in plan_note(first) and "for this batch size alone" in plan_note(first)
    assert captures == [(32, False)]  # the graphs of every batch: in the fork
    other = simulate(dataclasses.replace(WIDE, batch_size=20))  # waits for the fork's graphs
    assert "planned from the cached graphs" in plan_note(other)
    best = find_max_batch_size(WIDE, A100, 2 * GiB, known=simulate(WIDE, 2 * GiB))
    assert best > WIDE.batch_size and captures == [(32, False)]
    assert "plan from the cache" in plan_note(simulate(WIDE))  # its own plan, kept

    monkeypatch.setattr(compiledstep, "CAPTURE_BESIDE", False)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", os.environ["GPTCFG_CACHE_DIR"] + "-shared")
    shared = simulate(WIDE)  # from the graphs of every batch: the plan its own capture made
    assert "serve every batch size" in plan_note(shared)
    assert (shared.peak_allocated_bytes, shared.peak_reserved_bytes) == (
        first.peak_allocated_bytes,
        first.peak_reserved_bytes,
    )
    assert shared.breakdown == first.breakdown


@pytest.mark.parametrize("why", ["a search follows", "no room", "a fork beside is at work"])
def test_a_check_plans_from_the_graphs_of_every_batch_where_a_capture_alone_would_not_help(
    idle_core, captures, monkeypatch, why
):
    """A search of other batches follows a check that asks for it and, likely, one that
    gptlint's estimate says does not fit with room; a fork beside already takes the idle core."""
    budget = 80 * GiB
    if why == "no room":
        budget = estimate_memory(WIDE, A100).total
    if why == "a fork beside is at work":
        monkeypatch.setattr(forked, "working_beside", lambda: 1)
    result = check_memory(WIDE, A100, budget, mode="simulate", searching=why == "a search follows")
    assert "serve every batch size" in plan_note(result)
    assert captures == [(HINT, True)]


def test_the_guards_of_the_graphs_are_read_as_they_say():
    guards = ["Eq(1024*s95, 1024*s24)", "1024*s24 > 4096", "s24 <= 4096"]
    holds = compiled.torchapi.guards_hold
    assert holds(guards, {"s95": 12, "s24": 12})
    assert not holds(guards, {"s95": 4, "s24": 4})
    multiple = ["Eq(Mod(s24, 8), 0)", "Ne(s24, 24)"]  # as sympy writes them
    assert holds(multiple, {"s24": 16})
    assert not holds(multiple, {"s24": 12}) and not holds(multiple, {"s24": 24})
    assert not holds(["s24 >>> 2"], {"s24": 3})  # unreadable: the graphs are not used


def test_an_unreadable_size_expression_refuses_the_plan():
    assert compiled.evaluate("256*s24 + 3", {"s24": 2}) == 515
    assert compiled.evaluate("(s24 // 2) - 1", {"s24": 8}) == 3
    for bad in ("s24 ** 2", "__import__('os')", "s24 / 2", "max(s24, 1)"):
        with pytest.raises(compiled.CompiledUnavailable, match="size expression"):
            compiled.evaluate(bad, {"s24": 2})


WORKER = """
import sys
from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.trainingrun import ModelShape, StepSpec
from pytest_gptcfg.engine import compiledstep
spec = StepSpec(ModelShape(1, 2, 64, 256, 8192, False, 0.0), int(sys.argv[1]), 256, 1,
                "bfloat16", True)
plan, source = compiledstep.get_plan(spec, AttentionKernel.FLASH)
print(source)
"""


def test_concurrent_workers_capture_the_graphs_once(tmp_path):
    """Two processes (as pytest-xdist workers) asking for the same model at two batch sizes at
    once: one captures, the other waits and plans from its graphs."""
    pytest.importorskip("fcntl")  # the cache's lock; without it each worker captures its own
    env = dict(os.environ, PYTHONPATH=str(SRC), GPTCFG_CACHE_DIR=str(tmp_path / "shared"))
    script = textwrap.dedent(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(batch)], env=env, stdout=subprocess.PIPE, text=True
        )
        for batch in (32, 20)
    ]
    sources = sorted(worker.communicate(timeout=600)[0].split()[-1] for worker in workers)
    assert sources == ["captured", "graphs"]
    keys = [json.loads(p.read_text())["key"] for p in (tmp_path / "shared").glob("plan-*.json")]
    assert sorted(str(k["batch_size"]) for k in keys) == ["20", "32", "symbolic"]


def test_a_temporary_file_a_killed_writer_left_is_removed_by_a_later_write():
    folder = compiledstep.plan_cache_dir()
    folder.mkdir(parents=True)
    killed, writing = folder / ".plan-killed.tmp", folder / ".plan-writing.tmp"
    for left in (killed, writing):
        left.write_text('{"key": {"model"', encoding="utf-8")
    long_ago = time.time() - compiledstep.STALE_TEMPORARY_SECONDS - 1
    os.utime(killed, (long_ago, long_ago))
    compiledstep.write_cached({"model": "any"}, {"events": []})
    assert not killed.exists()
    assert writing.exists()  # another writer's, still being written
    assert compiledstep.read_cached({"model": "any"}) == {"events": []}
