"""What users read: failure text, the end-of-session table, the JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gptlint import __version__
from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import MemoryMode
from gptlint.facts.units import format_gib, format_params
from gptlint.runmodel.estimate import BREAKDOWN_LABELS, rebatch
from gptlint.runmodel.trainingrun import TrainingRun
from pytest_gptcfg.results import MemoryResult

MEMORY_KEY = "gptcfg_memory"
LINT_KEY = "gptcfg_lint"


def memory_record(
    path: str,
    profile: GpuProfile,
    budget_bytes: int,
    step: TrainingRun | None = None,
    result: MemoryResult | None = None,
    max_batch_size: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One config's row in the table and the JSON report.

    Plain builtins only: xdist workers send it to the controller (execnet refuses subclasses
    such as torch's TorchVersion).
    """
    record: dict[str, Any] = {
        **base_record(path, profile, budget_bytes, error),
        "batch_size": None,
        "block_size": None,
        "gradient_accumulation_steps": None,
        "dtype": None,
        "compile": None,
        "compiled_step": None,
        "step": None,
        "upper_bound": None,
        "notes": list(step.notes) if step is not None else [],
        "peak_allocated_bytes": None,
        "peak_reserved_bytes": None,
        "context_bytes": None,
        "fits": None,
        "max_batch_size": max_batch_size,
        "eval_only": None,
    }
    if step is not None:
        shape = step.spec.shape
        record.update(
            params=shape.num_params(),
            params_total=shape.num_params(non_embedding=False),
            tokens_per_iter=step.tokens_per_iter,
            batch_size=step.spec.batch_size,
            block_size=step.spec.block_size,
            gradient_accumulation_steps=step.gradient_accumulation_steps,
            dtype=step.spec.dtype,
            compile=step.spec.compile,
            eval_only=step.spec.eval_only,
        )
    if result is not None:
        add_result(record, result)
    return record


def base_record(
    path: str, profile: GpuProfile, budget_bytes: int, error: str | None
) -> dict[str, Any]:
    """The fields every row has, a nanoGPT config's as a nanochat invocation's."""
    return {
        "path": path,
        "gpu": profile.name,
        "budget_bytes": budget_bytes,
        "error": error,
        "mode": None,
        "torch_version": None,
        "device_name": None,
        "params": None,
        "params_total": None,
        "tokens_per_iter": None,
    }


def add_result(record: dict[str, Any], result: MemoryResult) -> None:
    """Fill a row's verdict from `result` (plain builtins only, see `memory_record`)."""
    record.update(
        mode=MemoryMode(result.mode).value,
        torch_version=str(result.torch_version),
        device_name=str(result.device_name),
        peak_allocated_bytes=int(result.peak_allocated_bytes),
        peak_reserved_bytes=int(result.peak_reserved_bytes),
        context_bytes=int(result.context_bytes),
        fits=bool(result.fits),
        compiled_step=bool(result.compiled),
        step=ran_word(record.get("eval_only"), result.compiled),
        upper_bound=bool(result.upper_bound),
    )
    record["notes"] += [str(note) for note in result.notes]
    if result.params is not None:  # counted on the model that ran (a fork's may hold more)
        record.update(params=result.params[0], params_total=result.params[1])


def failure_text(
    path: str, profile: GpuProfile, step: TrainingRun, result: MemoryResult, max_batch: int
) -> str:
    """Why a config does not fit, and the batch that would, as plain text (no traceback)."""
    spec, shape = step.spec, step.spec.shape
    params = result.params[0] if result.params is not None else shape.num_params()
    model = step.model
    lines = [
        f"{path} does not fit {profile.label} ({how_found(result, spec.eval_only)})",
        peak_line(result, _what(step)),
        f"  model ({model.model_from}): n_layer {shape.n_layer}, n_head {shape.n_head}, n_embd "
        f"{shape.n_embd}, block_size {shape.block_size}, vocab_size {shape.vocab_size}"
        + (f" ({model.vocab_from})" if model.model_from == "scratch" else "")
        + f", bias {shape.bias}: {format_params(params)} params",
        (
            f"  evaluation (eval_only: no_grad forwards, no training step): batch_size "
            f"{spec.batch_size} x block_size {spec.block_size}, {spec.dtype}, attention "
            f"{result.attention_kernel}"
            if spec.eval_only
            else f"  step: batch_size {spec.batch_size} x block_size {spec.block_size}, "
            f"gradient_accumulation_steps {step.gradient_accumulation_steps} "
            f"({step.tokens_per_iter:,} tokens/iter), {spec.dtype}, compile "
            f"{'on' if spec.compile else 'off'}, attention {result.attention_kernel}"
        ),
        *peak_breakdown(result, BREAKDOWN_LABELS),
    ]
    searched = MemoryMode(result.mode).value
    if result.upper_bound:  # the eager step's search: the compiled run fits at least as many
        searched += " eager step: the compiled run fits at least this"
    lines.append("  " + suggestion(step, max_batch, searched))
    lines += [f"  note: {note}" for note in (*step.notes, *result.notes)]
    return "\n".join(lines)


def how_found(result: MemoryResult, eval_only: bool | None = False) -> str:
    """`compiled step simulated on fake tensors, no GPU used; torch 2.13.0`: what ran, how,
    under which torch."""
    how = {
        MemoryMode.MEASURED: f"measured on {result.device_name}",
        MemoryMode.SIMULATED: "simulated on fake tensors, no GPU used",
        MemoryMode.ESTIMATED: "estimated by gptlint's analytical model, no step run",
    }[MemoryMode(result.mode)]
    how = f"{what_ran(eval_only, result.compiled)} {how}"
    if result.upper_bound:
        how += ", an upper bound of the compiled run's peak"
    return f"{how}; torch {result.torch_version}"


def peak_line(result: MemoryResult, what: str = "step", per_gpu: bool = False) -> str:
    """`  peak 16.49 GiB > budget 11.99 GiB: ... reserved (... allocated) + ... CUDA context`,
    with whether `what` (the step, the evaluation) ran out of memory (an upper bound's eager
    run: met the cap)."""
    total = result.peak_reserved_bytes + result.context_bytes
    return (
        f"  peak {format_gib(total)} > budget {format_gib(result.budget_bytes)}"
        f"{' per GPU' if per_gpu else ''}: {format_gib(result.peak_reserved_bytes)} reserved "
        f"({format_gib(result.peak_allocated_bytes)} allocated) + "
        f"{format_gib(result.context_bytes)} CUDA context"
        + (f" (the {what} ran out of memory)" if result.oom and not result.upper_bound else "")
        + (f" (the eager {what} met the cap)" if result.oom and result.upper_bound else "")
    )


def peak_breakdown(result: MemoryResult, labels: dict[str, str]) -> list[str]:
    """`  at the peak:` and the breakdown's terms in `labels`' order (the labels padded to the
    longest), then the largest tensors."""
    lines = ["  at the peak:"]
    width = max(len(label) for label in labels.values())
    for key, label in labels.items():
        if key in result.breakdown:
            lines.append(f"    {label:<{width}}  {format_gib(result.breakdown[key]):>11}")
    if result.largest_tensors:
        lines.append("  largest tensors:")
        lines += [f"    {format_gib(s):>11}  {name}" for name, s in result.largest_tensors[:5]]
    return lines


def _what(step: TrainingRun) -> str:
    """What was checked: train.py's training step, or its evaluation for an eval-only config."""
    return "evaluation" if step.spec.eval_only else "step"


def suggestion(step: TrainingRun, max_batch: int, how: str = "simulated") -> str:
    """The largest batch_size that fits, with the accumulation that keeps tokens per iteration
    (for an eval-only config, just the batch: it has no optimizer step); `how` the figures
    were found (`simulated`, `estimated`)."""
    batch, gas = step.spec.batch_size, step.gradient_accumulation_steps
    if max_batch == 0:
        if step.spec.eval_only:
            return f"batch_size 1 does not fit the evaluation either: shrink block_size ({how})"
        return f"batch_size 1 does not fit either: shrink the model or block_size ({how})"
    if step.spec.eval_only:
        return (
            f"the largest batch_size whose evaluation fits is {max_batch} ({how}); try it "
            f"with --gpt-set batch_size={max_batch}"
        )
    new = rebatch(batch, gas, max_batch, step.accumulation_divisor)
    if new is None:
        return (
            f"the largest batch_size that fits is {max_batch} ({how}); no "
            f"gradient_accumulation_steps keeps {step.tokens_per_iter:,} tokens/iter"
        )
    new_batch, new_gas = new
    fitting = (
        f"the largest batch_size that fits is {max_batch} ({how}); "
        if new_batch != max_batch
        else ""
    )
    return (
        f"{fitting}fits: batch_size = {new_batch}, gradient_accumulation_steps = {new_gas} "
        f"(same {step.tokens_per_iter:,} tokens/iter); try it with "
        f"--gpt-set batch_size={new_batch} --gpt-set gradient_accumulation_steps={new_gas}"
    )


def _call_properties(report: pytest.CollectReport | pytest.TestReport) -> list[tuple[str, Any]]:
    """The user properties of a test's call phase; none for any other report (collection
    reports have no `user_properties`, setup and teardown reports carry no results)."""
    if getattr(report, "when", None) != "call":
        return []
    return list(getattr(report, "user_properties", None) or ())


_RAN = {"eval": "evaluation", "compiled": "compiled step", "eager": "eager step"}


def ran_word(eval_only: bool | None, compiled: bool | None) -> str:
    """`eval`, `compiled` or `eager`: what a memory result is the peak of."""
    return "eval" if eval_only else "compiled" if compiled else "eager"


def what_ran(eval_only: bool | None, compiled: bool | None) -> str:
    """`evaluation`, `compiled step` or `eager step`, for sentences."""
    return _RAN[ran_word(eval_only, compiled)]


def verbose_status(report: pytest.CollectReport | pytest.TestReport) -> str | None:
    """`PASSED (simulated: peak 7.19 GiB of 11.99 GiB)` for a memory item that fits, under -v;
    None for every other report, whatever its type."""
    record = dict(_call_properties(report)).get(MEMORY_KEY)
    if not record or not record.get("fits") or not getattr(report, "passed", False):
        return None
    peak = record["peak_reserved_bytes"] + record["context_bytes"]
    budget = format_gib(record["budget_bytes"])
    ran = what_ran(record.get("eval_only"), record.get("compiled_step"))
    return f"PASSED ({ran} {record['mode']}: peak {format_gib(peak)} of {budget})"


class Results:
    """Records gathered from test reports, on the xdist controller as in a plain run."""

    def __init__(self) -> None:
        self.memory: dict[str, dict[str, Any]] = {}
        self.lint: dict[str, list[str]] = {}

    def add(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        """Keep the plugin's records of a test's call phase; ignore every other report."""
        for key, value in _call_properties(report):
            if key == MEMORY_KEY:
                self.memory[report.nodeid] = value
            elif key == LINT_KEY and value:
                self.lint[report.nodeid] = value

    def summary(self) -> list[str]:
        """The memory table, then the non-error lint diagnostics of passing and failing configs."""
        lines = table(list(self.memory.values())) if self.memory else []
        notes = [line for entries in self.lint.values() for line in entries]
        if notes:
            lines += ["", "gptlint diagnostics:", *(f"  {n}" for n in notes)]
        return lines

    def write_json(self, path: Path) -> None:
        data = {"gptlint_version": __version__, "configs": list(self.memory.values())}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def table(records: list[dict[str, Any]]) -> list[str]:
    """One row per config or nanochat invocation (`runs/speedrun.sh:8 base_train`): gpu, mode,
    params, tokens/iter (a nanochat run's total batch size), peak (per GPU) vs budget, verdict,
    max batch (a nanochat run's largest `--device-batch-size`)."""
    header = (
        "config",
        "gpu",
        "mode",
        "params",
        "tokens/iter",
        "peak",
        "budget",
        "fits",
        "max batch",
    )
    rows = [header]
    for r in sorted(records, key=lambda r: (r["path"], r.get("line", 0))):
        name = _row_name(r)
        if r["error"] is not None:
            rows.append((name, r["gpu"], *"----", format_gib(r["budget_bytes"]), "error", "-"))
            continue
        peak = r["peak_reserved_bytes"] + r["context_bytes"]
        rows.append(
            (
                name,
                r["gpu"],
                f"{r['mode']} ({ran_word(r.get('eval_only'), r.get('compiled_step'))}"
                + (", upper bound)" if r.get("upper_bound") else ")"),
                format_params(r["params"]),
                f"{r['tokens_per_iter']:,}",
                format_gib(peak),
                format_gib(r["budget_bytes"]),
                "yes" if r["fits"] else "NO",
                _max_batch_cell(r[MAX_BATCH_KEYS[r.get("kind", "nanogpt")]]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 4, 5, 6, 8}
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


MAX_BATCH_KEYS = {"nanogpt": "max_batch_size", "nanochat": "max_device_batch_size"}
"""Where a row keeps its largest batch that fits, by its `kind` (a nanoGPT config's row has
none)."""


def _row_name(record: dict[str, Any]) -> str:
    """`config/x.py`, or `runs/speedrun.sh:8 base_train` for a nanochat invocation."""
    if record.get("kind") == "nanochat":
        return f"{record['path']}:{record['line']} {record['script']}"
    return str(record["path"])


def _max_batch_cell(max_batch: int | None) -> str:
    """`-` where not searched, `none` where not even batch_size 1 fits (as the failure says)."""
    if max_batch is None:
        return "-"
    return "none" if max_batch == 0 else str(max_batch)
