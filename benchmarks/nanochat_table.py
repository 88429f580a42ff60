"""pytest-gptcfg's verdicts for nanochat's base_train at several depths, device batches, world
sizes and GPUs, beside gptlint's estimate: the table of issue 23's hand check, and the
agreement of the two (peak tensors within 5%).

    python benchmarks/nanochat_table.py [CHECKOUT] [--depths 4,12,20] [--batches 32,16,8]
        [--worlds 1,8] [--gpus h100-80gb,rtx4090] [--eager]

CHECKOUT is a nanochat checkout (default: the nanochat-like one in tests/data/nanochat). Each
row derives `torchrun --nproc_per_node=W -m scripts.base_train -- --depth=D
--device-batch-size=B` as gptlint does (the checkout's own defaults: vocabulary, sequence
length, window pattern, total batch size) and checks it as the plugin does (compiled, as
base_train runs; `--eager` for the eager step). Needs torch. Plans are cached as the plugin
caches them, so a second run is fast; the seconds column says what this run took.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from gptlint.facts.gpus import get_profile
from gptlint.facts.units import GIB
from gptlint.nanochat.checkout import find_checkout
from gptlint.nanochat.derive import derive_step
from gptlint.nanochat.runscript import read_invocations
from gptlint.runmodel.chatestimate import estimate_chat_memory
from gptlint.runmodel.chatrun import ChatStep
from pytest_gptcfg.engine.chatcheck import check_chat_memory, find_max_device_batch

ROOT = Path(__file__).resolve().parents[1]
LINE = (
    "torchrun --standalone --nproc_per_node={world} -m scripts.base_train --"
    " --depth={depth} --device-batch-size={batch}{extra}\n"
)


def step_of(
    checkout: Path, depth: int, batch: int, world: int, gpu: str, extra: str = ""
) -> ChatStep | str:
    """base_train's step for the line above (`extra`: more of its words, ` --fp8`), as gptlint
    derives it (or why it is not)."""
    found = find_checkout(checkout / "runs" / "x.sh")
    if found is None:
        return f"{checkout} is no nanochat checkout"
    line = LINE.format(world=world, depth=depth, batch=batch, extra=extra)
    (invocation,) = read_invocations(line)
    derived = derive_step(invocation, found, get_profile(gpu))
    if derived.value is None:
        return str(derived.problems[0])
    return derived.value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", nargs="?", default=str(ROOT / "tests" / "data" / "nanochat"))
    parser.add_argument("--depths", default="4,12,20")
    parser.add_argument("--batches", default="32,16,8")
    parser.add_argument("--worlds", default="1,8")
    parser.add_argument("--gpus", default="h100-80gb,rtx4090")
    parser.add_argument("--eager", action="store_true")
    args = parser.parse_args(argv)
    checkout = Path(args.checkout).resolve()
    print(
        f"{'gpu':10} {'depth':>5} {'B':>3} {'world':>5} {'mode':22} {'sim t':>7} {'est t':>7}"
        f" {'diff':>6} {'peak':>7} {'budget':>7} {'fits':>4} {'max B':>5} {'s':>6}"
    )
    worst = 0.0
    for gpu in args.gpus.split(","):
        profile = get_profile(gpu)
        for depth in map(int, args.depths.split(",")):
            for batch in map(int, args.batches.split(",")):
                for world in map(int, args.worlds.split(",")):
                    step = step_of(checkout, depth, batch, world, gpu)
                    if isinstance(step, str):
                        print(f"{gpu:10} {depth:5} {batch:3} {world:5} not derived: {step}")
                        continue
                    if args.eager:
                        step = dataclasses.replace(step, compiled=False)
                    budget = profile.usable_bytes
                    start = time.perf_counter()
                    result = check_chat_memory(step, checkout, profile, budget, mode="simulate")
                    largest = find_max_device_batch(step, checkout, profile, budget, known=result)
                    seconds = time.perf_counter() - start
                    estimate = estimate_chat_memory(step, profile)
                    sim = result.peak_allocated_bytes
                    diff = 100 * (estimate.tensors - sim) / sim
                    if result.mode.value == "simulated":
                        worst = max(worst, abs(diff))
                    mode = f"{result.mode.value} ({'compiled' if result.compiled else 'eager'})"
                    peak = result.peak_reserved_bytes + result.context_bytes
                    print(
                        f"{gpu:10} {depth:5} {batch:3} {world:5} {mode:22} {sim / GIB:7.2f}"
                        f" {estimate.tensors / GIB:7.2f} {diff:+5.1f}% {peak / GIB:7.2f}"
                        f" {budget / GIB:7.2f} {'yes' if result.fits else 'NO':>4}"
                        f" {largest:5} {seconds:6.1f}"
                    )
    print(f"\nworst difference of peak tensors, simulated rows: {worst:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
