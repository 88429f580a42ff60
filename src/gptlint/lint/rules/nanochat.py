"""GPT6xx, nanochat run scripts (`runs/*.sh`): what stops base_train, what only running the
script tells, fp8 and attention on the target GPU, chat_sft's inherited batch, and the per-GPU
memory estimate with the largest `--device-batch-size` that fits."""

from __future__ import annotations

from collections.abc import Iterator

from gptlint.facts.kinds import FixSafety, Severity
from gptlint.facts.units import format_gib
from gptlint.lint.diagnostics import SpanEdit
from gptlint.lint.rules.base import ProposedFix, ScriptExample, ScriptRule, ScriptViolation
from gptlint.lint.scriptcontext import ScriptContext
from gptlint.nanochat.runscript import Invocation
from gptlint.runmodel.chatestimate import largest_device_batch, with_device_batch
from gptlint.runmodel.chatrun import ChatStep
from gptlint.runmodel.trainingrun import Problem

_WHERE = {
    "total_batch_size": ("total_batch_size", "device_batch_size", "max_seq_len"),
    "device_batch_size": ("device_batch_size",),
    "max_seq_len": ("max_seq_len",),
}
"""The flags a problem of a derived key is shown at (the first one written)."""


def problem_flags(problem: Problem) -> tuple[str, ...]:
    """The flags a problem is shown at (the first one written; else the invocation)."""
    return _WHERE.get(problem.key, (problem.key,))


def run_label(invocation: Invocation) -> str:
    """`base_train (line 67)`, with where it may not run as written."""
    where = f", {invocation.where}" if invocation.where else ""
    return f"{invocation.script} (line {invocation.line}{where})"


def problem_message(
    invocation: Invocation, problem: Problem, world_flag: str = "--world-size"
) -> str:
    """Why an invocation's step is not known: what stops it (GPT601), or the value only
    running the script gives (GPT602), `world_flag` giving an unknown world size; the
    plugin's memory items say the same."""
    if not problem.unknown:
        return f"{run_label(invocation)} stops: {problem}"
    hint = f" ({world_flag} N gives it)" if problem.key == "world_size" else ""
    return f"{run_label(invocation)} is not checked: {problem}{hint}"


def _steps(ctx: ScriptContext) -> Iterator[tuple[Invocation, ChatStep]]:
    for invocation, derived in ctx.steps:
        if derived.value is not None:
            yield invocation, derived.value


class NanochatRunStops(ScriptRule):
    """A nanochat invocation in a run script that stops before its first step: an assert of
    base_train or chat_sft (`total_batch_size % (B * T * world) == 0`, the model's
    divisibility of its dimensions), argparse rejecting a flag, an entry script missing from
    the checkout. It is reported at the flag that decides it, else at the invocation.

    Why:
        The script runs for minutes (data download, tokenizer training) before the assert
        stops it; the arithmetic is known from the script and the checkout alone.

    Fix safety:
        No fix: which of the flags to change is the run's choice.
    """

    code = "GPT601"
    name = "nanochat-run-stops"
    severity = Severity.ERROR
    summary = "a nanochat invocation stops before training (an assert, argparse)"
    EXAMPLES = (
        ScriptExample(
            "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12 "
            "--device-batch-size=24\n",
            line=1,
            col=78,
        ),
    )

    def check_script(self, ctx: ScriptContext) -> Iterator[ScriptViolation]:
        for invocation, derived in ctx.steps:
            for problem in derived.problems:
                if not problem.unknown:
                    at = ctx.at_flag(invocation, *problem_flags(problem))
                    yield ScriptViolation(at, problem_message(invocation, problem))


class NanochatValueUnknown(ScriptRule):
    """A value a nanochat invocation needs that only running the run script gives: a shell
    variable set inside an `if` or a loop, `$(...)`, `${X:-y}`, a variable never assigned, a
    word that may set any flag. The message names the value and the line that makes it
    unknown; the invocation's memory and asserts are not checked.

    `--world-size N` (the `world-size` setting) gives the world size of every invocation.
    `--set NAME=VALUE` (the `set` setting; the plugin's `--gpt-set`) gives a shell variable the
    script leaves unknown, as if the environment the script runs in held it: `--set DEPTH=26`
    for `--depth=$DEPTH`, `--set d=20` for a loop's variable. A value the script itself gives
    the variable stays the script's.

    Why:
        gptlint never guesses a value: an unknown flag leaves the run unchecked, and saying
        so is better than silence.

    Fix safety:
        No fix: the value is the script's to choose.
    """

    code = "GPT602"
    name = "nanochat-value-unknown"
    severity = Severity.WARNING
    summary = "a value of a nanochat invocation is only known by running the script"
    EXAMPLES = (
        ScriptExample(
            "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=$DEPTH\n",
            line=1,
            col=67,
        ),
    )

    def check_script(self, ctx: ScriptContext) -> Iterator[ScriptViolation]:
        for invocation, derived in ctx.steps:
            for problem in derived.problems:
                if problem.unknown:
                    at = ctx.at_flag(invocation, *problem_flags(problem))
                    yield ScriptViolation(at, problem_message(invocation, problem))


class NanochatFp8Unsupported(ScriptRule):
    """`--fp8` on a base_train invocation whose target GPU cannot run fp8 matmuls
    (`torch._scaled_mm` needs compute capability 8.9 or newer: Ada, Hopper, Blackwell).
    base_train converts the Linears to Float8Linear on any CUDA device, so the first forward
    raises.

    Why:
        The run stops at its first step, after the model is built and the data has loaded.

    Fix safety:
        No fix: dropping `--fp8` changes the run's numerics and speed; that is the run's
        choice.
    """

    code = "GPT603"
    name = "nanochat-fp8-unsupported"
    severity = Severity.ERROR
    summary = "--fp8 on a GPU without fp8 matmuls"
    EXAMPLES = (
        ScriptExample(
            "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12 --fp8\n",
            {"gpu": "a100-40gb"},
            line=1,
            col=78,
        ),
    )

    def check_script(self, ctx: ScriptContext) -> Iterator[ScriptViolation]:
        for invocation, step in _steps(ctx):
            use = ctx.estimate(step).fp8
            if use.fails:
                yield ScriptViolation(
                    ctx.at_flag(invocation, "fp8"),
                    f"{run_label(invocation)}: --fp8 on {ctx.gpu.label} fails at the first "
                    f"forward: {use.reason}",
                )


class NanochatWindowWithoutFa3(ScriptRule):
    """Sliding-window attention layers (`--window-pattern` with an `S`) on a target GPU where
    nanochat does not take FlashAttention-3 (it does only on Hopper, with bf16 compute):
    SDPA then runs those layers with an explicit boolean mask, which rules out its flash
    backend, so they run the memory-efficient (or math) kernel, slower, with the mask in
    memory. The message names the kernels and the estimate's attention term.

    Why:
        nanochat's defaults are tuned for H100s; on another GPU the same pattern costs speed
        and memory that `--window-pattern=L` (full context in every layer, served by SDPA's
        flash kernel) would not.

    Fix safety:
        No fix: the window pattern changes the model being trained.
    """

    code = "GPT604"
    name = "nanochat-window-without-fa3"
    severity = Severity.WARNING
    summary = "sliding-window layers without FlashAttention-3 on the target GPU"
    EXAMPLES = (
        ScriptExample(
            "python -m scripts.base_train --depth=12 --window-pattern=SSSL\n",
            {"gpu": "rtx4090"},
            line=1,
            col=41,
        ),
    )

    def check_script(self, ctx: ScriptContext) -> Iterator[ScriptViolation]:
        for invocation, step in _steps(ctx):
            estimate = ctx.estimate(step)
            attention = estimate.attention
            if attention.fa3 or attention.window is None:
                continue
            held = estimate.terms["attention"]
            memory = f"attention holds {format_gib(held)} per GPU at the peak; " if held else ""
            yield ScriptViolation(
                ctx.at_flag(invocation, "window_pattern"),
                f"{run_label(invocation)}: window pattern {step.shape.window_pattern} on "
                f"{ctx.gpu.label} runs {attention.label} ({attention.reason}); {memory}"
                "--window-pattern=L runs every layer at full context with SDPA's flash kernel",
            )


class NanochatSftInheritsBatch(ScriptRule):
    """A chat_sft invocation without `--device-batch-size`: chat_sft takes the base
    checkpoint's device batch size (statically: the script's last base_train run, else
    chat_sft.py's fallback), whatever the GPU it runs on now. A note, with the value taken.

    Why:
        A device batch chosen for pretraining on one GPU is carried into fine-tuning, where
        the sequences and the GPU may differ; the memory check (GPT606) uses the inherited
        value, and writing it on the line makes it the script's choice.

    Fix safety:
        No fix: the value to write is the run's choice.
    """

    code = "GPT605"
    name = "nanochat-sft-inherits-batch"
    severity = Severity.INFO
    summary = "chat_sft inherits its --device-batch-size from the base checkpoint"
    EXAMPLES = (
        ScriptExample(
            "python -m scripts.base_train --depth=12 --device-batch-size=8\n"
            "python -m scripts.chat_sft\n",
            line=2,
            col=1,
        ),
    )

    def check_script(self, ctx: ScriptContext) -> Iterator[ScriptViolation]:
        for invocation, step in _steps(ctx):
            if step.script != "chat_sft" or ctx.flag(invocation, "device_batch_size"):
                continue
            note = next((n for n in step.notes if n.startswith("device_batch_size=")), None)
            if note is not None:
                yield ScriptViolation(
                    ctx.at_invocation(invocation),
                    f"{run_label(invocation)}: {note}; --device-batch-size on this line sets it",
                )


class NanochatMemoryAboveBudget(ScriptRule):
    """A nanochat invocation whose estimated peak GPU memory per GPU is above the budget:
    the `memory-budget` setting, else the total memory of the `gpu` profile. The estimate
    (`gptlint.runmodel.chatestimate`) adds the parameters (fp32 matrices, bf16 embeddings),
    gradients, Muon's and AdamW's state (sharded over ranks), the optimizer step's stacks,
    what the compiled forward saves for its backward (for the attention kernel the target GPU
    runs), the B x T x vocab logits and loss buffers, the allocator's overhead and the CUDA
    context. The message gives the breakdown and the largest `--device-batch-size` on
    nanochat's ladder (32, 16, 8, 4, 2, 1) that fits; base_train (and chat_sft) recompute the
    gradient accumulation from the total batch size, so the tokens per step stay.

    Why:
        nanochat's README says to reduce `--device-batch-size` until things fit, one out of
        memory error at a time; the estimate answers before anything runs.

    Fix safety:
        The fix writes that `--device-batch-size` in the script (the flag's value, byte for
        byte, or the flag added after the invocation's last argument): the total batch size
        stays, the micro-batch and the number of micro-steps (and with them the step's
        speed) change.
    """

    code = "GPT606"
    name = "nanochat-memory-above-budget"
    severity = Severity.ERROR
    summary = "estimated peak memory per GPU of a nanochat invocation exceeds the budget"
    fix_safety = FixSafety.UNSAFE
    EXAMPLES = (
        ScriptExample(
            "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=24 "
            "--device-batch-size=32\n",
            {"gpu": "a100-40gb"},
            line=1,
            col=78,
        ),
    )

    def check_script(self, ctx: ScriptContext) -> Iterator[ScriptViolation]:
        for invocation, step in _steps(ctx):
            estimate = ctx.estimate(step)
            if estimate.total <= ctx.budget:
                continue
            message = (
                f"{run_label(invocation)} needs an estimated {format_gib(estimate.total)} per GPU "
                f"({estimate.phase}, device batch {step.device_batch_size}, world "
                f"{step.world_size}), above the {format_gib(ctx.budget)} budget of "
                f"{ctx.gpu.label}: {estimate.breakdown()}"
            )
            batch = largest_device_batch(step, ctx.gpu, ctx.budget)
            fix = None
            if batch is None:
                message += "; " + NO_DEVICE_BATCH_FITS
            else:
                message += "; " + device_batch_fits(step, batch)
                fix = _rewrite_batch(ctx, invocation, batch)
            yield ScriptViolation(ctx.at_flag(invocation, "device_batch_size"), message, fix)


NO_DEVICE_BATCH_FITS = (
    "no --device-batch-size on nanochat's ladder (32..1) fits: a smaller --depth or "
    "--max-seq-len, or a GPU with more memory, is needed"
)
"""What GPT606 (and the plugin's memory item) says where not even a device batch of 1 fits."""


def device_batch_fits(step: ChatStep, batch: int) -> str:
    """`--device-batch-size=4 fits (base_train recomputes the gradient accumulation from the
    total batch size N: M micro-steps)`: GPT606's fix, and the plugin's memory item's."""
    smaller = with_device_batch(step, batch)
    if not step.training or smaller is None:
        return f"--device-batch-size={batch} fits"
    return (
        f"--device-batch-size={batch} fits ({step.script} recomputes the gradient "
        f"accumulation from the total batch size {step.total_batch_size}: "
        f"{smaller.grad_accum_steps} micro-steps)"
    )


def _rewrite_batch(ctx: ScriptContext, invocation: Invocation, batch: int) -> ProposedFix | None:
    """`--device-batch-size` set to `batch`: its value rewritten where it is written, else the
    flag added after the invocation's last argument."""
    flag = ctx.flag(invocation, "device_batch_size")
    description = f"Set --device-batch-size={batch}"
    if flag is not None:
        if flag.value_span is None:
            return None
        start, end = flag.value_span
        return ProposedFix(description, (), (SpanEdit(start, end, str(batch)),))
    if not invocation.args:
        return None
    end = invocation.args[-1].end
    return ProposedFix(description, (), (SpanEdit(end, end, f" --device-batch-size={batch}"),))


RULES = [
    NanochatRunStops,
    NanochatValueUnknown,
    NanochatFp8Unsupported,
    NanochatWindowWithoutFa3,
    NanochatSftInheritsBatch,
    NanochatMemoryAboveBudget,
]
