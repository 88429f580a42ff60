"""One capture for every batch size, checked against a capture per batch size.

The plugin captures a model's compiled graphs once with the batch size as a symbol and plans
each batch from them (`compiledstep.plan_for`). This script simulates each compiled step
twice, from those graphs and from graphs captured for its batch alone (as every plan was made
before), each in a cache of its own, and prints the step's peaks (tensors allocated; reserved
+ CUDA context) side by side with their difference in bytes and percent; whether the two
plans hold the same events (kinds, sizes and dtypes in order, buffer names aside); and where
the first plan came from: `shared` (the graphs of every batch) or `own` (a capture of its own:
a batch of 1, or one where the shared graphs' guards do not hold).

    python benchmarks/batch_plans.py [PATHS...] [--batches 12,8] [--max-layers 24]
    python benchmarks/batch_plans.py --nanochat [CHECKOUT] [--depths 4,12] [--batches 16,8] [--fp8]

nanoGPT configs (by default `benchmarks/agreement.py`'s, the compiled ones with at most
`--max-layers` layers) are checked at their own batch and at each of `--batches` (B >= 2);
`--nanochat` checks base_train of the checkout (tests/data/nanochat by default) on 8 H100s.
Needs torch; each static capture takes as long as a cold plan.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agreement import DEFAULT_PATHS, configs, derive

from gptlint.facts.gpus import get_profile
from pytest_gptcfg.engine import compiledstep
from pytest_gptcfg.engine.check import check_memory
from pytest_gptcfg.results import MemoryResult

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 2**62  # the step's own peak, never capped


def events(cache: Path) -> dict[int, list[tuple[Any, ...]]]:
    """The plans cached in `cache`, by batch size: each one's events without buffer names."""
    import json

    found = {}
    for path in cache.glob("plan-*.json"):
        data = json.loads(path.read_text())
        batch, plan = data["key"].get("batch_size"), data["plan"]
        if isinstance(batch, int) and "fw" in plan:
            found[batch] = [
                (e[0], *e[2:]) if e[0] == "alloc" else (e[0],) for e in plan["fw"] + plan["bw"]
            ]
    return found


def both(run: Callable[[], MemoryResult], batch: int) -> tuple[MemoryResult, MemoryResult, bool]:
    """`run()` from symbolic graphs and from a capture of its batch alone, each in a fresh
    cache; and whether the two plans at `batch` have the same events."""
    results, plans = [], []
    for symbolic in (True, False):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["GPTCFG_CACHE_DIR"] = cache
            compiledstep.SYMBOLIC_BATCH = symbolic
            results.append(run())
            plans.append(events(Path(cache)).get(batch))
    compiledstep.SYMBOLIC_BATCH = True
    return results[0], results[1], plans[0] is not None and plans[0] == plans[1]


def row(name: str, batch: int, symbolic: MemoryResult, static: MemoryResult, same: bool) -> str:
    """One line: both peaks and their differences."""
    cells = [f"{name:44} {batch:3}"]
    for peak in (
        lambda r: r.peak_allocated_bytes,
        lambda r: r.peak_reserved_bytes + r.context_bytes,
    ):
        a, b = peak(symbolic), peak(static)
        cells.append(f"{a:15,} {b:15,} {a - b:+12,} {100 * (a - b) / b:+7.3f}%")
    both_compiled = symbolic.compiled and static.compiled and "estimated" not in symbolic.notes[-1]
    cells.append(("same" if same else "differ") if both_compiled else "NOT PLANNED")
    shared = any("serve every batch size" in note for note in symbolic.notes)
    cells.append("shared" if shared else "own")
    return " ".join(cells)


def nanogpt_rows(paths: list[str], batches: list[int], max_layers: int) -> list[str]:
    rows = []
    for path in configs(paths):
        context, run = derive(path)
        if isinstance(run, str) or not run.spec.compile or run.spec.eval_only:
            continue
        if run.spec.shape.n_layer > max_layers:
            continue
        shown = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        for batch in dict.fromkeys([run.spec.batch_size, *batches]):
            if batch < 2:
                continue
            spec = dataclasses.replace(run.spec, batch_size=batch)
            gpu = context.gpu
            symbolic, static, same = both(
                lambda spec=spec, gpu=gpu: check_memory(spec, gpu, BUDGET, mode="simulate"), batch
            )
            rows.append(row(shown, batch, symbolic, static, same))
            print(rows[-1], flush=True)
    return rows


def nanochat_rows(checkout: Path, depths: list[int], batches: list[int], fp8: bool) -> list[str]:
    from nanochat_table import step_of

    from pytest_gptcfg.engine.chatcheck import check_chat_memory

    profile = get_profile("h100-80gb")
    rows = []
    for depth in depths:
        for batch in batches:
            step = step_of(checkout, depth, batch, 8, "h100-80gb", " --fp8" if fp8 else "")
            if isinstance(step, str):
                continue
            symbolic, static, same = both(
                lambda step=step: check_chat_memory(step, checkout, profile, BUDGET, "simulate"),
                batch,
            )
            name = f"nanochat d{depth}{' --fp8' if fp8 else ''}"
            rows.append(row(name, batch, symbolic, static, same))
            print(rows[-1], flush=True)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--nanochat", nargs="?", const=str(ROOT / "tests" / "data" / "nanochat"))
    parser.add_argument("--batches", default="")
    parser.add_argument("--depths", default="4,12")
    parser.add_argument("--fp8", action="store_true", help="nanochat's base_train with --fp8")
    parser.add_argument("--max-layers", type=int, default=24)
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b]
    compiledstep.CAPTURE_BESIDE = False  # each first batch too planned from the shared graphs
    print(
        f"{'config':44} {'B':>3} {'tensors, one capture':>15} {'per batch':>15} {'diff':>12}"
        f" {'%':>8} {'peak, one capture':>15} {'per batch':>15} {'diff':>12} {'%':>8} events from"
    )
    start = time.perf_counter()
    if args.nanochat:
        depths = list(map(int, args.depths.split(",")))
        rows = nanochat_rows(Path(args.nanochat).resolve(), depths, batches or [16, 8], args.fp8)
    else:
        rows = nanogpt_rows(args.paths or list(DEFAULT_PATHS), batches, args.max_layers)
    print(f"\n{len(rows)} steps in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
