"""Where a compiled plan's time goes: one cold plan of GPT-2 124M at batch 12 (the plugin's
`compiledstep.get_plan`, an empty cache: the graphs captured with the batch as a symbol, then
planned at 12), profiled, split into the stages of issue 24.

    python benchmarks/plan_stages.py [--layers 12] [--batch 12] [--per-batch]

`--per-batch` captures the graphs for the batch alone instead (as every plan was made before
one capture served every batch), to set the two side by side. Where a core is spare, the
backward graph is lowered in a fork while the forward's is lowered here (`engine/forked.py`):
cProfile sees this process only, so the backward's lowering, scheduling and code are then
not in their rows, and the wait for the fork is a row of its own; `--no-fork` lowers both
here.

Stages, from cProfile's cumulative times of the functions that run them (profiling slows the
run down; the shares are what to read): Dynamo's capture of the model; AOTAutograd's joint
trace with the partition (`min_cut_rematerialization_partition`, also shown alone);
Inductor's lowering (`GraphLowering.run`), its scheduling (`Scheduler.__init__`: fusion and
the buffer reuse that makes the memory plan), the kernels' and the wrapper's code; and the
replay of the wrapper's `call()` on stand-in buffers (`wrappercall.run_call`). The file and
function names are torch's own and may move between releases: a stage whose function is not
found reads 0.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import warnings


def cumulative(stats: pstats.Stats, file: str, function: str) -> float:
    """The cumulative seconds of every function `function` defined in a file ending `file`."""
    table = stats.stats  # type: ignore[attr-defined]
    return sum(v[3] for k, v in table.items() if k[0].endswith(file) and k[2] == function)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--per-batch", action="store_true")
    parser.add_argument("--no-fork", action="store_true")
    args = parser.parse_args(argv)
    os.environ["GPTCFG_CACHE_DIR"] = tempfile.mkdtemp()  # cold: nothing cached
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

    from gptlint.facts.kinds import AttentionKernel
    from gptlint.runmodel.trainingrun import ModelShape, StepSpec
    from pytest_gptcfg.engine import compiledstep, forked

    compiledstep.SYMBOLIC_BATCH = not args.per_batch
    forked.ENABLED = not args.no_fork
    shape = ModelShape(args.layers, 12, 768, 1024, 50304, False, 0.0)
    spec = StepSpec(shape, args.batch, 1024, 1, "bfloat16", True)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    compiledstep.get_plan(spec, AttentionKernel.FLASH)
    profile.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profile)
    compile_ = cumulative(stats, "convert_frame.py", "_compile")
    joint = cumulative(stats, "torchapi.py", "trace_joint")
    wrapper = cumulative(stats, "torchapi.py", "generate_wrapper")
    waited = cumulative(stats, "torchapi.py", "wrapper_for")
    scheduling = cumulative(stats, "scheduler.py", "__init__")
    codegen = cumulative(stats, "graph.py", "codegen")
    rows = [
        ("Dynamo capture", compile_ - joint),
        ("AOTAutograd joint trace and partition", joint - wrapper),
        (
            "  of which the partition",
            cumulative(stats, "partitioners.py", "min_cut_rematerialization_partition"),
        ),
        ("Inductor lowering", cumulative(stats, "graph.py", "run")),
        ("Inductor scheduling (fusion, buffer reuse)", scheduling),
        ("kernels' and wrapper's code", codegen - scheduling),
        ("waiting for the backward's fork", waited),
        ("wrapper call() replayed", cumulative(stats, "wrappercall.py", "run_call")),
    ]
    staged = sum(seconds for label, seconds in rows if not label.startswith(" "))
    rows.append(("the rest (imports, model build, checks)", wall - staged))
    how = "captured for the batch alone" if args.per_batch else "batch symbolic"
    how += ", backward lowered in a fork" if waited else ", both graphs lowered here"
    print(
        f"GPT-2 {args.layers} layers, batch {args.batch}, {how}: {wall:.1f} s profiled (cold plan)"
    )
    for label, seconds in rows:
        print(f"  {label:44} {seconds:6.1f} s  {100 * seconds / wall:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
