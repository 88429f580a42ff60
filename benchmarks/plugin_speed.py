"""Wall time of the memory check per config: simulation always, CUDA measurement when present.

Run: `python benchmarks/plugin_speed.py`. Prints one row per config, step (eager, compiled)
and mode; a compiled row's first run plans the graphs with Inductor, the second reads the
plan from the cache (`pytest_gptcfg.engine.compiledstep.plan_cache_dir`).
"""

from __future__ import annotations

import time

from gptlint.gpus import get_profile
from gptlint.run import ModelShape, StepSpec
from pytest_gptcfg.engine.check import check_memory, import_torch

torch = import_torch()

GIB = 1024**3

CASES = [
    ("shakespeare-char 6/6/384 b64 T256", ModelShape(6, 6, 384, 256, 65, False, 0.2), 64, 256),
    ("gpt2-124M b12 T1024", ModelShape(12, 12, 768, 1024, 50304, False, 0.0), 12, 1024),
    ("12/12/576 b16 T1024 (seed)", ModelShape(12, 12, 576, 1024, 50304, False, 0.0), 16, 1024),
    ("gpt2-medium b4 T1024", ModelShape(24, 16, 1024, 1024, 50304, False, 0.0), 4, 1024),
]


def main() -> None:
    profile = get_profile("rtx4070")
    modes = ["simulate"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}; target {profile.label}; budget 12 GiB")
    print(
        f"{'config':36} {'step':9} {'mode':9} {'seconds':>8} {'peak alloc':>11} {'peak resv':>10}"
        " fits"
    )
    runs = [(False, "eager"), (True, "compiled"), (True, "(cached)")]
    for label, shape, batch, block in CASES:
        for compile_, step in runs:
            spec = StepSpec(shape, batch, block, 40, "bfloat16", compile=compile_)
            for mode in modes if step != "(cached)" else ["simulate"]:
                start = time.perf_counter()
                result = check_memory(spec, profile, 12 * GIB, mode=mode)
                seconds = time.perf_counter() - start
                allocated = result.peak_allocated_bytes / GIB
                reserved = result.peak_reserved_bytes / GIB
                fits = "yes" if result.fits else "no"
                shown = step if result.compiled == compile_ else "eager*"
                print(
                    f"{label:36} {shown:9} {result.mode:9} {seconds:8.2f} {allocated:9.2f}Gi"
                    f" {reserved:8.2f}Gi {fits}"
                )
    print("eager*: the compiled step could not be simulated; the result's notes say why")
    if "cuda" not in modes:
        print("no CUDA GPU here: measured rows need one")


if __name__ == "__main__":
    main()
