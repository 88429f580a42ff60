"""GPT4xx, the training loop: DDP gradient accumulation, the learning-rate schedule, evaluation."""

from __future__ import annotations

import math
from collections.abc import Iterator

from gptlint.facts.kinds import FixSafety, Severity
from gptlint.lint.context import LintContext
from gptlint.lint.rules.base import Invalid, ProposedFix, Rule, Valid, Violation
from gptlint.lint.rules.common import is_number, latest, plausible, positive_int, target
from gptlint.lint.scopes import ConfigScope


def _nearest_multiple(value: int, step: int) -> int:
    """The multiple of `step` nearest `value` (ties: the larger), at least `step`."""
    lower = max(value // step * step, step)
    upper = lower + step if lower <= value else lower
    return lower if value - lower < upper - value else upper


class AccumulationNotDivisibleByWorldSize(Rule):
    """A gradient_accumulation_steps that the DDP world size does not divide. The world size
    comes from the `world-size` setting, else from a `torchrun ... --nproc_per_node=N` line
    (times `--nnodes=M`) in the file's own comments or docstring that runs this config (it
    names this file, or no config at all), as nanoGPT's configs document their launch command;
    a launch line that starts no process (`--nproc_per_node=0`, `--nnodes=0`) is reported as
    such. A fork whose train.py does not split the accumulation (older nanoGPT keeps it per
    process) has nothing to assert: the rule is quiet.

    Why:
        Under DDP, train.py treats gradient_accumulation_steps as the global count and splits
        it: `assert gradient_accumulation_steps % ddp_world_size == 0`, then
        `gradient_accumulation_steps //= ddp_world_size`. A count that does not divide fails
        the assert in every process at start-up.

    Fix safety:
        The fix sets the nearest multiple of the world size (ties: the larger), which changes
        the tokens per iteration.
    """

    code = "GPT401"
    name = "accumulation-not-divisible-by-world-size"
    severity = Severity.ERROR
    summary = "gradient_accumulation_steps is not divisible by the world size"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("gradient_accumulation_steps = 5 * 8\n", settings={"world_size": 8}),
        Valid("# torchrun --standalone --nproc_per_node=4 train.py config/example.py\n"),
        Valid(  # a launch line for another config says nothing about this one
            "# torchrun --standalone --nproc_per_node=8 train.py config/other.py\n"
            "gradient_accumulation_steps = 12\n"
        ),
        Valid("gradient_accumulation_steps = 3\n"),
    )
    INVALID = (
        Invalid(
            "# torchrun --standalone --nproc_per_node=8 train.py\n"
            "gradient_accumulation_steps = 12\n",
            "# torchrun --standalone --nproc_per_node=8 train.py\n"
            "gradient_accumulation_steps = 16\n",
            line=2,
            col=1,
            message="gradient_accumulation_steps=12 is not divisible by the world size 8"
            " (`--nproc_per_node=8` in the file's comments)",
            unsafe_fixes=True,
        ),
        Invalid(
            "batch_size = 8\n",
            "batch_size = 8\ngradient_accumulation_steps = 42\n",
            line=1,
            col=1,
            message="train.py asserts gradient_accumulation_steps % ddp_world_size == 0",
            settings={"world_size": 6},
            unsafe_fixes=True,
        ),
        Invalid(  # torchrun refuses to start: no process to train
            "# torchrun --standalone --nproc_per_node=0 train.py\n"
            "gradient_accumulation_steps = 40\n",
            line=1,
            col=1,
            message="the world size is 0 (`--nproc_per_node=0` in the file's comments)",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        world = ctx.world_size
        if world.size == 0:
            yield Violation(
                world.node,
                f"the world size is 0 ({world.origin}): torchrun starts no process;"
                " --nproc_per_node and --nnodes must be at least 1",
            )
            return
        accum = ctx.config.get("gradient_accumulation_steps")
        if world.size <= 1 or not positive_int(accum) or accum % world.size == 0:
            return
        if not ctx.config.schema.splits_accumulation:
            return  # this fork's train.py keeps the accumulation per process: nothing to divide
        new = _nearest_multiple(accum, world.size)
        message = (
            f"gradient_accumulation_steps={accum} is not divisible by the world size"
            f" {world.size} ({world.origin}): under DDP train.py asserts"
            f" gradient_accumulation_steps % ddp_world_size == 0 before splitting it among the"
            f" processes; use {new} ({new // world.size} micro-steps per process; tokens per"
            f" iteration change by {new / accum:.2f}x)"
        )
        edits = ConfigScope(ctx.config).set_value("gradient_accumulation_steps", new)
        fix = ProposedFix(f"set gradient_accumulation_steps = {new}", edits)
        node = target(ctx, "gradient_accumulation_steps") or world.node
        yield Violation(node, message, fix)


def learning_rate_at(it: int, lr: float, min_lr: float, warmup: float, decay: float) -> float:
    """nanoGPT's `get_lr(it)`: linear warmup, then cosine from lr to min_lr until
    lr_decay_iters, then min_lr."""
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > decay:
        return min_lr
    ratio = (it - warmup) / (decay - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


_SCHEDULE_KEYS = ("learning_rate", "min_lr", "warmup_iters", "lr_decay_iters", "max_iters")


class ScheduleContradiction(Rule):
    """Learning-rate settings that contradict the schedule nanoGPT's `get_lr(it)` runs when
    decay_lr is True: a linear warmup for warmup_iters iterations, a cosine decay from
    learning_rate to min_lr until lr_decay_iters, then min_lr; the loop stops after iteration
    max_iters. Reported:

    * min_lr above learning_rate: the "decay" raises the learning rate.
    * warmup_iters equal to lr_decay_iters: at that iteration get_lr divides 0 by 0
      (ZeroDivisionError, which stops the run there).
    * warmup_iters above lr_decay_iters: right after warmup the rate drops to min_lr; no decay.
    * warmup_iters above max_iters: the run ends before warmup does.
    * lr_decay_iters far beyond max_iters (the run ends less than halfway through the decay):
      the learning rate is still high when training stops. nanoGPT's configs keep
      lr_decay_iters equal to max_iters ("should be ~= max_iters per Chinchilla").

    Only reported when the file sets one of the keys involved.

    Why:
        The run starts either way, so nothing says that its schedule is not the one the
        config describes: it shows in the loss curve, or as a crash mid-run.

    Fix safety:
        No fix: which value is meant is not known.
    """

    code = "GPT402"
    name = "schedule-contradiction"
    severity = Severity.WARNING
    summary = "learning-rate schedule contradictions (min_lr > learning_rate, warmup >= decay, ...)"
    VALID = (
        Valid("max_iters = 5000\nlr_decay_iters = 5000\nwarmup_iters = 100\n"),
        Valid("max_iters = 20\ndecay_lr = False\n"),
        Valid("learning_rate = 1e-3\nmin_lr = 1e-4\n"),
    )
    INVALID = (
        Invalid(
            "max_iters = 5000\n",
            line=1,
            col=1,
            message="lr_decay_iters=600000 is far beyond max_iters=5000: training stops 0.5%"
            " into the cosine decay with the learning rate still 6.00e-04 (100% of"
            " learning_rate); set lr_decay_iters = max_iters",
        ),
        Invalid(
            "learning_rate = 1e-4\nmin_lr = 1e-3\nmax_iters = 600000\n",
            line=2,
            col=1,
            message="min_lr=0.001 is above learning_rate=0.0001",
        ),
        Invalid(
            "warmup_iters = 1000\nlr_decay_iters = 1000\nmax_iters = 1000\n",
            line=2,
            col=1,
            message="ZeroDivisionError",
        ),
        Invalid(
            "warmup_iters = 2000\nlr_decay_iters = 1000\nmax_iters = 1000\n",
            line=3,
            col=1,
            message="the run ends before warmup does",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        get = ctx.config.get
        if get("decay_lr") is not True or ctx.config.acted_on("eval_only") is True:
            return
        lr, min_lr, warmup, decay, max_iters = (get(k) for k in _SCHEDULE_KEYS)
        if not all(plausible(v) for v in (lr, min_lr, warmup, decay, max_iters)) or lr <= 0:
            return
        if not any(ctx.is_set_in_file(k) for k in _SCHEDULE_KEYS):
            return
        for keys, message in _contradictions(lr, min_lr, warmup, decay, max_iters):
            yield Violation(latest(ctx, *keys) or latest(ctx, *_SCHEDULE_KEYS), message)


def _contradictions(
    lr: float, min_lr: float, warmup: float, decay: float, max_iters: float
) -> Iterator[tuple[tuple[str, ...], str]]:
    if min_lr > lr:
        yield (
            ("min_lr", "learning_rate"),
            f"min_lr={min_lr} is above learning_rate={lr}: get_lr's cosine runs from"
            " learning_rate to min_lr, so the learning rate rises after warmup instead of decaying",
        )
    if warmup > max_iters:
        reached = learning_rate_at(int(max_iters), lr, min_lr, warmup, decay)
        yield (
            ("warmup_iters", "max_iters"),
            f"warmup_iters={warmup} is above max_iters={max_iters}: the run ends before"
            f" warmup does, at a learning rate of {reached:.2e} ({reached / lr:.0%} of"
            " learning_rate)",
        )
        return
    if warmup == decay:
        yield (
            ("warmup_iters", "lr_decay_iters"),
            f"warmup_iters = lr_decay_iters = {decay}: at iteration {decay} get_lr computes"
            " (it - warmup_iters) / (lr_decay_iters - warmup_iters) = 0/0, a ZeroDivisionError"
            " that stops the run there",
        )
    elif warmup > decay:
        yield (
            ("warmup_iters", "lr_decay_iters"),
            f"warmup_iters={warmup} is above lr_decay_iters={decay}: right after warmup get_lr"
            " returns min_lr (it > lr_decay_iters), so the cosine decay never runs",
        )
    elif (max_iters - warmup) / (decay - warmup) < 0.5:
        ratio = (max_iters - warmup) / (decay - warmup)
        final = learning_rate_at(int(max_iters), lr, min_lr, warmup, decay)
        yield (
            ("lr_decay_iters", "max_iters"),
            f"lr_decay_iters={decay} is far beyond max_iters={max_iters}: training stops"
            f" {ratio:.1%} into the cosine decay with the learning rate still {final:.2e}"
            f" ({final / lr:.0%} of learning_rate); set lr_decay_iters = max_iters",
        )


class EvalIntervalAboveMaxIters(Rule):
    """An eval_interval above max_iters. Not reported for eval_only or resumed runs (their
    iteration count starts elsewhere).

    Why:
        train.py evaluates, and writes `ckpt.pt`, only at iterations where
        `iter_num % eval_interval == 0`, and saves only when `iter_num > 0` (and the
        validation loss improved, or always_save_checkpoint). The loop runs iterations 0 to
        max_iters. With eval_interval above max_iters the only evaluation is at iteration 0,
        before any training: the run never reports a validation loss for the trained model and
        never writes a checkpoint, so the work is lost when it ends.

    Fix safety:
        No fix: whether the run should be longer or evaluate more often is not known.
    """

    code = "GPT403"
    name = "eval-interval-above-max-iters"
    severity = Severity.WARNING
    summary = "eval_interval > max_iters: never evaluates or checkpoints after training"
    VALID = (
        Valid("eval_interval = 250\nmax_iters = 5000\n"),
        Valid("eval_interval = 500\nmax_iters = 500\n"),
        Valid("eval_only = True\nmax_iters = 0\n"),
    )
    INVALID = (
        Invalid(
            "max_iters = 500\n",
            line=1,
            col=1,
            message="eval_interval=2000 is above max_iters=500: train.py evaluates when"
            " iter_num % eval_interval == 0, which in iterations 0..500 happens only at iteration"
            " 0, before any training, and it saves ckpt.pt only at such an evaluation with"
            " iter_num > 0: this run never writes a checkpoint",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        get = ctx.config.get
        interval, max_iters = get("eval_interval"), get("max_iters")
        evaluates, init_from = ctx.config.acted_on("eval_only"), ctx.config.acted_on("init_from")
        if evaluates not in (False, None) or init_from == "resume":
            return
        if not (positive_int(interval) and is_number(max_iters)) or interval <= max_iters:
            return
        if not (ctx.is_set_in_file("eval_interval") or ctx.is_set_in_file("max_iters")):
            return
        message = (
            f"eval_interval={interval} is above max_iters={max_iters}: train.py evaluates when"
            f" iter_num % eval_interval == 0, which in iterations 0..{max_iters} happens only at"
            " iteration 0, before any training, and it saves ckpt.pt only at such an evaluation"
            f" with iter_num > 0: this run never writes a checkpoint; use eval_interval ="
            f" {max_iters} or less"
        )
        yield Violation(latest(ctx, "eval_interval", "max_iters"), message)


RULES = [AccumulationNotDivisibleByWorldSize, ScheduleContradiction, EvalIntervalAboveMaxIters]
