"""How far gptlint's analytical estimate (GPT501) is from pytest-gptcfg's simulation.

For every config under `examples/` and `tests/data/` whose run can be derived statically, both
front ends take the same `gptlint.nanogpt.derive.derive_run` answer; this script sets the estimate's
total beside the simulation's peak reserved + CUDA context, and the estimate's tensors beside
the simulation's peak allocated, category by category where they differ most. A project whose
pyproject.toml names its model.py (`tests/plugin/data/manual_attention`: nanoGPT's slow
attention path) is simulated with that model, as the plugin does.

    python benchmarks/agreement.py [PATHS...]
    python benchmarks/agreement.py --nanochat [CHECKOUT]

Needs torch (the simulation); prints one row per config and a summary line. `--nanochat`
compares gptlint's nanochat estimate with the plugin's compiled simulation instead, for
base_train at depths 4, 12 and 20 and device batches 8 and 16 on 8 H100s (the test checkout in
tests/data/nanochat by default; `benchmarks/nanochat_table.py` takes other depths, batches,
world sizes and GPUs).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from gptlint.facts.units import GIB
from gptlint.lint.context import LintContext
from gptlint.lint.rules import RULE_CODES
from gptlint.nanogpt.resolve import load_config
from gptlint.runmodel.estimate import BREAKDOWN_LABELS, MemoryEstimate, estimate_memory
from gptlint.runmodel.trainingrun import TrainingRun
from gptlint.settings.pyproject import load_settings
from pytest_gptcfg.engine.check import check_memory
from pytest_gptcfg.engine.usermodel import model_factory
from pytest_gptcfg.results import MemoryResult

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ("examples/config", "tests/data/real_configs", "tests/plugin/data/manual_attention")


def configs(paths: list[str]) -> list[Path]:
    """The `.py` files under `paths`, except helpers whose names start with `_`."""
    found: list[Path] = []
    for name in paths:
        path = ROOT / name if not Path(name).is_absolute() else Path(name)
        found += sorted(path.rglob("config/*.py")) if path.is_dir() else [path]
    return [p for p in found if not p.name.startswith("_")]


def derive(path: Path) -> tuple[LintContext, TrainingRun | str]:
    """The linter's context for `path` and its run, or why there is none."""
    settings = load_settings(path.parent, RULE_CODES)
    context = LintContext(load_config(path, settings.defaults, settings.profile()), settings)
    derived = context.training_run
    run = derived.value
    if run is None:
        return context, str(derived.problems[0])
    if settings.model is not None:  # the project's model.py, as the plugin builds it
        spec = dataclasses.replace(run.spec, model_factory=model_factory(settings.model))
        run = dataclasses.replace(run, spec=spec)
    return context, run


def compare(estimate: MemoryEstimate, result: MemoryResult) -> tuple[float, float, str]:
    """(total difference, tensor difference) in percent of the simulation, and the category
    that differs most."""
    simulated = result.peak_reserved_bytes + result.context_bytes
    total = 100 * (estimate.total - simulated) / simulated
    tensors = 100 * (estimate.tensors - result.peak_allocated_bytes) / result.peak_allocated_bytes
    gaps = {
        key: estimate.terms.get(key, 0) - result.breakdown.get(key, 0) for key in BREAKDOWN_LABELS
    }
    worst = max(gaps, key=lambda key: abs(gaps[key]))
    return total, tensors, f"{BREAKDOWN_LABELS[worst]} {gaps[worst] / GIB:+.2f}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--nanochat"]:
        from nanochat_table import main as nanochat_table

        options = [
            "--depths",
            "4,12,20",
            "--batches",
            "16,8",
            "--worlds",
            "8",
            "--gpus",
            "h100-80gb",
        ]
        return nanochat_table([*argv[1:], *options])
    rows, totals, tensors = [], [], []
    for path in configs(argv or list(DEFAULT_PATHS)):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        context, run = derive(path)
        if isinstance(run, str):
            rows.append(f"{shown!s:62} not derived: {run[:70]}")
            continue
        estimate = estimate_memory(run.spec, context.gpu)
        start = time.perf_counter()
        result = check_memory(run.spec, context.gpu, 2**62, mode="simulate")
        seconds = time.perf_counter() - start
        total, tensor, worst = compare(estimate, result)
        totals.append(abs(total))
        tensors.append(abs(tensor))
        simulated = result.peak_reserved_bytes + result.context_bytes
        rows.append(
            f"{shown!s:62} {estimate.total / GIB:7.2f} {simulated / GIB:7.2f} {total:+6.1f}%"
            f" {estimate.tensors / GIB:7.2f} {result.peak_allocated_bytes / GIB:7.2f}"
            f" {tensor:+6.1f}%  {worst:28} {seconds:5.1f}"
        )
    print(
        f"{'config':62} {'est':>7} {'sim':>7} {'total':>7} {'est t':>7} {'sim t':>7}"
        f" {'tensors':>7}  {'largest gap (GiB)':28} {'sim s':>5}"
    )
    print("\n".join(rows))
    if totals:
        within = sum(t <= 3 for t in totals)
        print(
            f"\n{len(totals)} configs: total within 3% for {within}, worst {max(totals):.1f}%;"
            f" tensors within 3% for {sum(t <= 3 for t in tensors)}, worst {max(tensors):.1f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
