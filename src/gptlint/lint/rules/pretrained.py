"""GPT3xx, run settings: init_from, pretrained checkpoints and dtype."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

from gptlint.facts.kinds import FixSafety, Severity
from gptlint.lint.context import LintContext
from gptlint.lint.rules.base import Invalid, ProposedFix, Rule, Valid, Violation
from gptlint.lint.rules.common import positive_int, target
from gptlint.lint.scopes import ConfigScope, removable, remove_statements
from gptlint.nanogpt.derive import DTYPES, INIT_FROM_VALUES, PRESETS
from gptlint.nanogpt.schema import NANOGPT_SCHEMA

_IGNORED_FOR_PRETRAINED = ("n_layer", "n_head", "n_embd", "bias")
_DTYPE_ALIASES = {
    "bf16": "bfloat16",
    "bfloat": "bfloat16",
    "torch.bfloat16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
    "torch.float16": "float16",
    "torch.half": "float16",
    "fp32": "float32",
    "float": "float32",
    "single": "float32",
    "torch.float32": "float32",
    "torch.float": "float32",
}


def _shape_text(name: str) -> str:
    p = PRESETS[name]
    return f"{p.n_layer}/{p.n_head}/{p.n_embd}, bias {p.bias}"


def _set(ctx: LintContext, key: str, value: object) -> ProposedFix:
    return ProposedFix(f"set {key} = {value!r}", ConfigScope(ctx.config).set_value(key, value))


class ShapeIgnoredWhenPretrained(Rule):
    """Shape keys (n_layer, n_head, n_embd, bias) in a config that loads its model:
    `init_from = 'gpt2'` (or gpt2-medium/-large/-xl) or `'resume'`.

    Why:
        With a GPT-2 name train.py calls `GPT.from_pretrained(init_from, dict(dropout=dropout))`:
        only dropout is passed on, and n_layer, n_head, n_embd and bias come from the
        checkpoint (gpt2 12/12/768, gpt2-medium 24/16/1024, gpt2-large 36/20/1280, gpt2-xl
        48/25/1600, all with bias). With `'resume'` they come from `ckpt.pt`'s `model_args`.
        Shape keys in such a config do nothing, and usually mean the author expects a
        different model than the one that trains. A fork's train.py may pass more to
        `from_pretrained` (its `override_args`): those keys are not reported, and the message
        says what that script passes, with the line.

    Fix safety:
        The fix deletes the ignored lines (comment lines above them stay); the author may have
        meant the shape rather than the checkpoint.
    """

    code = "GPT301"
    name = "shape-ignored-when-pretrained"
    severity = Severity.WARNING
    summary = "init_from gpt2*/resume with shape keys set: they are ignored"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("init_from = 'gpt2'\ndropout = 0.1\n"),
        Valid("init_from = 'scratch'\nn_layer = 6\n"),
        Valid("n_layer = 6\n"),
    )
    INVALID = (
        Invalid(
            "init_from = 'gpt2-xl'\n# a smaller model\nn_layer = 12\nn_head = 12\nbatch_size = 1\n",
            "init_from = 'gpt2-xl'\n# a smaller model\nbatch_size = 1\n",
            line=3,
            col=1,
            message="init_from='gpt2-xl' loads the checkpoint's shape (48/25/1600, bias True):"
            " n_layer, n_head set here are ignored",
            unsafe_fixes=True,
        ),
        Invalid(
            "init_from = 'resume'\nn_embd = 512\nmax_iters = 10\n",
            "init_from = 'resume'\nmax_iters = 10\n",
            line=2,
            col=1,
            message="ckpt.pt",
            unsafe_fixes=True,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        init_from = ctx.config.acted_on("init_from")
        if not isinstance(init_from, str) or (init_from != "resume" and init_from not in PRESETS):
            return
        passes = ctx.config.schema.pretrained_passes
        passed = () if init_from == "resume" or passes is None else passes[0]
        keys = [
            k for k in _IGNORED_FOR_PRETRAINED if ctx.file.assignments_of(k) and k not in passed
        ]
        if not keys:
            return
        if init_from == "resume" and ctx.config.schema is NANOGPT_SCHEMA:
            source = "the shape saved in out_dir/ckpt.pt (model_args)"
        elif init_from == "resume":  # a fork may resume from another file (`resume_dir`)
            source = "the shape saved in the checkpoint it resumes from (model_args)"
        else:
            source = f"the checkpoint's shape ({_shape_text(init_from)})"
        message = (
            f"init_from={init_from!r} loads {source}: {', '.join(keys)} set here"
            f" {'is' if len(keys) == 1 else 'are'} ignored{_passed_on(ctx, init_from)}"
        )
        assignments = [a for a in ctx.file.assignments if a.key in keys]
        fix = None
        if all(removable(a) for a in assignments):
            edits = remove_statements(ctx.file.module, [a.statement for a in assignments])
            if edits:
                fix = ProposedFix(f"delete the {', '.join(keys)} lines", edits)
        yield Violation(assignments[0].target, message, fix)


def _passed_on(ctx: LintContext, init_from: str) -> str:
    """` (...)`: what of the config reaches the loaded model, as the training script says it
    (nothing to say for a fork's resume, whose checkpoint reading is its own)."""
    schema = ctx.config.schema
    passes = schema.pretrained_passes
    if schema is NANOGPT_SCHEMA:
        return " (only dropout is passed on)"
    if init_from == "resume":
        return ""
    script = Path(schema.origin).name
    if passes is None:
        return f" (what {script} passes to from_pretrained could not be read)"
    keys, line = passes
    return f" ({script}:{line} passes on only {', '.join(keys) or 'nothing'})"


class BlockSizeAbovePretrained(Rule):
    """A block_size above the 1024 positions of the GPT-2 checkpoint the config loads.

    Why:
        train.py crops a pretrained model to a smaller block_size (`model.crop_block_size`)
        but never grows it: with `block_size = 2048` the model builds fine and the first
        forward fails `assert t <= self.config.block_size` ("Cannot forward sequence of
        length 2048, block size is only 1024").

    Fix safety:
        The fix sets block_size to the checkpoint's 1024. The run could not train before, so
        no run that worked changes.
    """

    code = "GPT302"
    name = "block-size-above-pretrained"
    severity = Severity.ERROR
    summary = "block_size larger than the pretrained model's (1024)"
    fix_safety = FixSafety.SAFE
    VALID = (
        Valid("init_from = 'gpt2'\nblock_size = 1024\n"),
        Valid("init_from = 'gpt2'\nblock_size = 256\n"),
        Valid("block_size = 2048\n"),
    )
    INVALID = (
        Invalid(
            "init_from = 'gpt2-medium'\nblock_size = 2048\n",
            "init_from = 'gpt2-medium'\nblock_size = 1024\n",
            line=2,
            col=1,
            message="block_size=2048 is larger than gpt2-medium's 1024 positions",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        init_from, block = ctx.config.acted_on("init_from"), ctx.config.get("block_size")
        preset = PRESETS.get(init_from) if isinstance(init_from, str) else None
        if preset is None or not positive_int(block) or block <= preset.block_size:
            return
        limit = preset.block_size
        message = (
            f"block_size={block} is larger than {init_from}'s {limit} positions: train.py only"
            f" crops smaller block sizes, so the first forward fails `assert t <="
            f" self.config.block_size`; use block_size={limit}"
        )
        yield Violation(
            target(ctx, "block_size") or target(ctx, "init_from"),
            message,
            _set(ctx, "block_size", limit),
        )


def near_miss(value: str, accepted: tuple[str, ...], aliases: dict[str, str]) -> str | None:
    """The accepted value `value` clearly means: the same up to case and `-`/`_`/space, a
    known alias, or the only close spelling. None when unclear."""
    folded = value.strip().lower()
    if folded in aliases:
        return aliases[folded]
    squashed = {v.replace("-", ""): v for v in accepted}
    key = folded.replace("-", "").replace("_", "").replace(" ", "")
    if key in squashed:
        return squashed[key]
    matches = difflib.get_close_matches(folded, accepted, n=2, cutoff=0.75)
    return matches[0] if len(matches) == 1 else None


class InvalidInitFrom(Rule):
    """An `init_from` other than 'scratch', 'resume' or a GPT-2 checkpoint name, checked
    against nanoGPT's values only, since a fork may accept its own.

    Why:
        Any other value starting with 'gpt2' fails `from_pretrained`'s
        `assert model_type in {'gpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl'}`, and anything
        else leaves `model` undefined: NameError after the data has loaded.

    Fix safety:
        The fix applies when the value is a clear near miss ('Scratch', 'gpt2_xl',
        'gpt-2-medium', 'resum'). The run could not start before, so no run that worked
        changes.
    """

    code = "GPT303"
    name = "invalid-init-from"
    severity = Severity.ERROR
    summary = "init_from is not a value nanoGPT accepts"
    fix_safety = FixSafety.SAFE
    VALID = (Valid("init_from = 'gpt2-xl'\n"), Valid("init_from = 'resume'\n"))
    INVALID = (
        Invalid(
            "init_from = 'Scratch'\n",
            "init_from = 'scratch'\n",
            line=1,
            col=1,
            message="init_from='Scratch' is not one of 'scratch', 'resume', 'gpt2',",
        ),
        Invalid(
            "init_from = 'gpt2_xl'\n",
            "init_from = 'gpt2-xl'\n",
            line=1,
            col=1,
            message="AssertionError",
        ),
        Invalid("init_from = 'llama'\n", line=1, col=1, message="NameError"),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        value = ctx.config.get("init_from")
        if ctx.config.schema is not NANOGPT_SCHEMA or not isinstance(value, str):
            return
        if value in INIT_FROM_VALUES or not ctx.is_set_in_file("init_from"):
            return
        accepted = ", ".join(repr(v) for v in INIT_FROM_VALUES)
        if value.startswith("gpt2"):
            failure = "from_pretrained fails its `assert model_type in {...}` (AssertionError)"
        else:
            failure = "train.py never builds `model` and fails with NameError"
        message = f"init_from={value!r} is not one of {accepted}: {failure}"
        meant = near_miss(value, INIT_FROM_VALUES, {"gpt-2": "gpt2"})
        fix = None
        if meant is not None:
            message += f"; did you mean {meant!r}?"
            fix = _set(ctx, "init_from", meant)
        yield Violation(target(ctx, "init_from"), message, fix)


class InvalidDtype(Rule):
    """A dtype other than 'float32', 'bfloat16' or 'float16'.

    Why:
        train.py maps dtype with `{'float32': ..., 'bfloat16': ..., 'float16': ...}[dtype]`,
        so any other string ('bf16', 'fp16', 'float') is a KeyError before training starts.

    Fix safety:
        The fix applies for clear near misses and the usual abbreviations (bf16 -> bfloat16,
        fp16/half -> float16, fp32/float -> float32). The run could not start before, so no
        run that worked changes.
    """

    code = "GPT304"
    name = "invalid-dtype"
    severity = Severity.ERROR
    summary = "dtype is not float32/bfloat16/float16"
    fix_safety = FixSafety.SAFE
    VALID = (Valid("dtype = 'float16'\n"), Valid("dtype = 'bfloat16'\n"))
    INVALID = (
        Invalid(
            "dtype = 'bf16'\n",
            "dtype = 'bfloat16'\n",
            line=1,
            col=1,
            message="dtype='bf16' is not one of 'float32', 'bfloat16', 'float16': train.py's"
            " dtype lookup raises KeyError; did you mean 'bfloat16'?",
        ),
        Invalid("dtype = 'Float16'\n", "dtype = 'float16'\n", line=1, col=1),
        Invalid("dtype = 'int8'\n", line=1, col=1, message="KeyError"),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        value = ctx.config.get("dtype")
        if not isinstance(value, str) or value in DTYPES or not ctx.is_set_in_file("dtype"):
            return
        accepted = ", ".join(repr(v) for v in DTYPES)
        message = (
            f"dtype={value!r} is not one of {accepted}: train.py's dtype lookup raises KeyError"
        )
        meant = near_miss(value, DTYPES, _DTYPE_ALIASES)
        fix = None
        if meant is not None:
            message += f"; did you mean {meant!r}?"
            fix = _set(ctx, "dtype", meant)
        yield Violation(target(ctx, "dtype"), message, fix)


class Bf16WithoutSupport(Rule):
    """`dtype = 'bfloat16'` while the `gpu` setting names a card without bfloat16 support (the
    `t4` profile, sm75).

    Why:
        Older PyTorch raises "Current CUDA Device does not support bfloat16" when train.py
        enters `torch.autocast(dtype=torch.bfloat16)`; newer PyTorch emulates bf16 without
        tensor cores, many times slower. nanoGPT's own default picks float16 on such cards;
        a config that writes 'bfloat16' overrides that.

    Fix safety:
        The fix writes 'float16' (train.py then enables its GradScaler): another precision,
        with other numerics, on every card the config runs on.
    """

    code = "GPT305"
    name = "bf16-without-support"
    severity = Severity.WARNING
    summary = "bfloat16 on a target GPU without bf16"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("dtype = 'bfloat16'\n"),
        Valid("dtype = 'float16'\n", settings={"gpu": "t4"}),
        Valid("n_layer = 6\n", settings={"gpu": "t4"}),
    )
    INVALID = (
        Invalid(
            "dtype = 'bfloat16'\n",
            "dtype = 'float16'\n",
            line=1,
            col=1,
            message="dtype='bfloat16' but t4 (NVIDIA Tesla T4 (16 GB), compute capability 7.5)"
            " has no bfloat16",
            settings={"gpu": "t4"},
            unsafe_fixes=True,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        if ctx.gpu.bf16 or ctx.config.get("dtype") != "bfloat16":
            return
        if not ctx.is_set_in_file("dtype"):
            return
        major, minor = ctx.gpu.compute_capability
        message = (
            f"dtype='bfloat16' but {ctx.gpu.name} ({ctx.gpu.label}, compute capability"
            f" {major}.{minor}) has no bfloat16: older PyTorch raises at torch.autocast, newer"
            " PyTorch emulates it without tensor cores; use dtype='float16' (train.py adds a"
            " GradScaler)"
        )
        yield Violation(target(ctx, "dtype"), message, _set(ctx, "dtype", "float16"))


RULES = [
    ShapeIgnoredWhenPretrained,
    BlockSizeAbovePretrained,
    InvalidInitFrom,
    InvalidDtype,
    Bf16WithoutSupport,
]
