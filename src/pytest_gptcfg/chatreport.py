"""What users read about a nanochat invocation's memory check: its row of the table and the
JSON report, its failure text, the largest `--device-batch-size` that fits. The shared parts
(how it ran, the peak line, the breakdown) are `report.py`'s, as nanoGPT configs print them."""

from __future__ import annotations

from typing import Any

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import MemoryMode
from gptlint.facts.units import format_params
from gptlint.lint.rules.nanochat import NO_DEVICE_BATCH_FITS, device_batch_fits
from gptlint.runmodel.chatestimate import CHAT_BREAKDOWN_LABELS
from gptlint.runmodel.chatparams import parameter_counts
from gptlint.runmodel.chatrun import ChatStep
from pytest_gptcfg.report import add_result, base_record, how_found, peak_breakdown, peak_line
from pytest_gptcfg.results import MemoryResult


def chat_record(
    path: str,
    line: int,
    script: str,
    profile: GpuProfile,
    budget_bytes: int,
    step: ChatStep | None = None,
    result: MemoryResult | None = None,
    max_device_batch: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The row of the invocation of `script` at `line` of the run script `path`, for the table
    and the JSON report (`kind` "nanochat"; plain builtins, as `report.memory_record`)."""
    record: dict[str, Any] = {
        "kind": "nanochat",
        **base_record(path, profile, budget_bytes, error),
        "line": line,
        "script": script,
        "depth": None,
        "model_dim": None,
        "n_head": None,
        "vocab_size": None,
        "max_seq_len": None,
        "window_pattern": None,
        "device_batch_size": None,
        "world_size": None,
        "total_batch_size": None,
        "grad_accum_steps": None,
        "dtype": None,
        "fp8": None,
        "compile": None,
        "compiled_step": None,
        "step": None,
        "upper_bound": None,
        "attention_kernel": None,
        "notes": list(step.notes) if step is not None else [],
        "peak_allocated_bytes": None,
        "peak_reserved_bytes": None,
        "context_bytes": None,
        "breakdown": None,
        "fits": None,
        "max_device_batch_size": max_device_batch,
        "eval_only": None,
    }
    if step is not None:
        shape = step.shape
        params = parameter_counts(shape)["total"]  # as num_scaling_params prints it
        record.update(
            params=params,
            params_total=params,
            depth=shape.depth,
            model_dim=shape.model_dim,
            n_head=shape.n_head,
            vocab_size=shape.vocab_size,
            max_seq_len=shape.seq_len,
            window_pattern=shape.window_pattern,
            device_batch_size=step.device_batch_size,
            world_size=step.world_size,
            total_batch_size=step.total_batch_size,
            tokens_per_iter=step.total_batch_size,
            grad_accum_steps=step.grad_accum_steps,
            dtype=step.dtype,
            fp8=step.fp8,
            compile=step.compiled,
            eval_only=not step.training,
        )
    if result is not None:
        add_result(record, result)
        record.update(
            attention_kernel=str(result.attention_kernel),
            breakdown={str(k): int(v) for k, v in result.breakdown.items()},
        )
    return record


def chat_failure_text(
    path: str,
    line: int,
    profile: GpuProfile,
    step: ChatStep,
    result: MemoryResult,
    max_device_batch: int,
) -> str:
    """Why the invocation at `line` of `path` does not fit, per GPU, and the largest
    `--device-batch-size` that would, as plain text (no traceback)."""
    shape = step.shape
    params = result.params[0] if result.params is not None else parameter_counts(shape)["total"]
    how = how_found(result, not step.training)
    held = {k: label for k, label in CHAT_BREAKDOWN_LABELS.items() if result.breakdown.get(k)}
    lines = [
        f"{path}:{line}: {step.script} does not fit {profile.label} ({how})",
        peak_line(result, "step" if step.training else "evaluation", per_gpu=True),
        f"  model: depth {shape.depth}, model_dim {shape.model_dim}, n_head {shape.n_head}, "
        f"vocab_size {shape.vocab_size} (padded to {shape.padded_vocab}), max_seq_len "
        f"{shape.seq_len}, window pattern {shape.window_pattern}: {format_params(params)} params",
        f"  {_what_ran(step)}, attention {result.attention_kernel}",
        *peak_breakdown(result, held),
        "  " + chat_suggestion(step, line, max_device_batch, MemoryMode(result.mode).value),
    ]
    lines += [f"  note: {note}" for note in (*step.notes, *result.notes)]
    return "\n".join(lines)


def _what_ran(step: ChatStep) -> str:
    """`step: device batch 16 x max_seq_len 2048, world size 8, total batch size ...`, or
    base_eval's evaluation."""
    batch = f"device batch {step.device_batch_size} x max_seq_len {step.shape.seq_len}"
    if not step.training:
        return (
            f"evaluation ({step.script}: no_grad forwards, no training step): {batch}, world "
            f"size {step.world_size}, {step.dtype}, compile off"
        )
    steps = step.grad_accum_steps
    return (
        f"step: {batch}, world size {step.world_size}, total batch size "
        f"{step.total_batch_size:,} tokens ({steps} micro-step{'s' if steps != 1 else ''}), "
        f"{step.dtype}{', fp8' if step.fp8 else ''}, compile {'on' if step.compiled else 'off'}"
    )


def chat_suggestion(step: ChatStep, line: int, max_device_batch: int, how: str) -> str:
    """The largest `--device-batch-size` on nanochat's ladder that fits, with the gradient
    accumulation base_train (or chat_sft) recomputes, as gptlint's GPT606 says it; `how` the
    figures were found (`simulated`, `estimated`)."""
    if max_device_batch == 0:
        return f"{how}: {NO_DEVICE_BATCH_FITS}"
    return f"{how}: {device_batch_fits(step, max_device_batch)}; write it on line {line}"
