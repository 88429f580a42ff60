"""GPT5xx, memory and size: the analytical peak against the GPU budget, parameter-count claims."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import replace

import libcst as cst

from gptlint.facts.kinds import FixSafety, Severity, ValueKind
from gptlint.facts.units import format_gib, format_params
from gptlint.lint.context import LintContext
from gptlint.lint.diagnostics import Edit, Rewrite
from gptlint.lint.rules.base import Invalid, ProposedFix, Rule, Valid, Violation
from gptlint.lint.rules.common import target
from gptlint.lint.scopes import ConfigScope
from gptlint.nanogpt.derive import PRESETS, ddp_uncounted
from gptlint.nanogpt.schema import NANOGPT_SCHEMA
from gptlint.runmodel.estimate import estimate_memory, largest_batch, rebatch
from gptlint.runmodel.trainingrun import ModelSource, TrainingRun

_MEMORY_KEYS = (
    "batch_size", "block_size", "n_layer", "n_head", "n_embd", "init_from", "dtype", "dataset",
    "vocab_size",
)  # fmt: skip


class PeakMemoryAboveBudget(Rule):
    """An estimated peak GPU memory of one nanoGPT training iteration above the budget: the
    `memory-budget` setting, else the total memory of the `gpu` profile (default rtx4070,
    12282 MiB). The estimate is analytical, without torch: it adds fp32 parameters, fp32
    gradients, AdamW's two fp32 moments, autocast's 16-bit weight copies, the activations
    autograd saves per layer (for the attention kernel the target GPU runs), the B x T x vocab
    logits and cross-entropy buffers, the caching allocator's overhead and the CUDA context;
    `gptlint.runmodel.estimate` derives each term. It models the step the config runs,
    compiled (`compile = True`, nanoGPT's default: Inductor fuses the loss) or eager, and says
    which, and the shape train.py builds (a gpt2* checkpoint's shape for
    `init_from = 'gpt2*'`; nothing for 'resume', whose shape is in the checkpoint). A file
    that sets none of the keys that size a run (batch_size, block_size, the shape, init_from,
    dtype, dataset) is not checked: nanoGPT's defaults are not its doing.

    The message gives the breakdown and the largest batch_size that fits, with the
    gradient_accumulation_steps that keeps the tokens per iteration (batch_size x
    gradient_accumulation_steps) unchanged. For a measurement of the real step, run
    `pytest --gpt-configs`.

    Why:
        A step that does not fit stops with CUDA out of memory, after the model is built and
        the data has loaded.

    Fix safety:
        The fix writes that batch_size and gradient_accumulation_steps: the tokens per
        iteration stay, the micro-batch (and with it the step's numerics and speed) changes.
    """

    code = "GPT501"
    name = "peak-memory-above-budget"
    severity = Severity.ERROR
    summary = "estimated peak training memory exceeds the budget on the target GPU"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid(
            "dataset = 'shakespeare_char'\nn_layer = 6\nn_head = 6\nn_embd = 384\n"
            "batch_size = 64\nblock_size = 256\n"
        ),
        Valid("batch_size = 16\n", settings={"gpu": "a100-80gb"}),
        Valid("init_from = 'resume'\nbatch_size = 64\n"),
    )
    INVALID = (
        Invalid(
            "n_layer = 12\nn_head = 12\nn_embd = 576\nbatch_size = 16\nblock_size = 1024\n"
            "gradient_accumulation_steps = 32\ncompile = False\n",
            "n_layer = 12\nn_head = 12\nn_embd = 576\nbatch_size = 8\nblock_size = 1024\n"
            "gradient_accumulation_steps = 64\ncompile = False\n",
            line=4,
            col=1,
            message="exceeds the 11.99 GiB budget of rtx4070",
            unsafe_fixes=True,
        ),
        Invalid(
            "init_from = 'gpt2-xl'\nbatch_size = 1\n",
            line=2,
            col=1,
            message="even batch_size=1 needs more: init_from='gpt2-medium' fits at batch_size 1",
        ),
        Invalid(
            "compile = False\nbatch_size = 12\n",
            "compile = False\nbatch_size = 3\ngradient_accumulation_steps = 160\n",
            line=2,
            col=1,
            message="budget of 6.00 GiB (the memory-budget setting)",
            settings={"memory_budget": 6 * 1024**3},
            unsafe_fixes=True,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        if not any(ctx.file.assignments_of(key) for key in _MEMORY_KEYS):
            return  # nothing here sizes a run: nanoGPT's defaults are not this file's doing
        run = ctx.training_run.value
        if run is None or run.spec.eval_only:
            return
        spec = run.spec
        estimate = estimate_memory(spec, ctx.gpu)
        budget = ctx.budget
        if estimate.total <= budget:
            return
        gpu = ctx.gpu
        if ctx.settings.memory_budget:
            against = f"the budget of {format_gib(budget)} (the memory-budget setting)"
        else:
            against = (
                f"the {format_gib(budget)} budget of {gpu.name} ({gpu.label}, {gpu.usable_mib} MiB)"
            )
        engine = "compiled" if spec.compile else "eager"
        message = (
            f"estimated peak training memory {format_gib(estimate.total)} exceeds {against}:"
            f" {estimate.breakdown()} at batch_size {spec.batch_size} x block_size"
            f" {spec.block_size} with vocab_size {spec.shape.vocab_size} ({run.model.vocab_from}),"
            f" {estimate.kernel.label}, {spec.dtype}, {engine}"
        )
        origin = ctx.config.schema.origin
        if origin != NANOGPT_SCHEMA.origin and not origin.endswith(f"{os.sep}train.py"):
            message += f" (the run {origin} starts)"  # one of several training scripts
        if run.world_size > 1:
            message += f"; {ddp_uncounted(spec, run.world_size)}"
        fits = largest_batch(spec, gpu, budget)
        fix = None
        if fits == 0:
            message += "; even batch_size=1 needs more: " + _smaller_model(ctx, run)
        else:
            fix, advice = self._advice(ctx, run, fits)
            message += advice
        yield Violation(target(ctx, "batch_size") or _shape_node(ctx), message, fix)

    def _advice(
        self, ctx: LintContext, run: TrainingRun, fits: int
    ) -> tuple[ProposedFix | None, str]:
        fitted = estimate_memory(replace(run.spec, batch_size=fits), ctx.gpu).total
        advice = f"; the largest batch_size that fits is {fits} ({format_gib(fitted)})"
        if any(
            resolved is not None and resolved.kind == ValueKind.OVERRIDE
            for resolved in map(ctx.config.resolved, ("batch_size", "gradient_accumulation_steps"))
        ):
            return None, advice  # given on the command line: not this file's to rewrite
        if {"batch_size", "gradient_accumulation_steps"} & set(run.rewritten):
            return None, advice  # train.py changes them: the config's value is not what runs
        accum = run.gradient_accumulation_steps  # the global count under DDP
        choice = rebatch(run.spec.batch_size, accum, fits, run.accumulation_divisor)
        if choice is None:
            return None, advice
        batch, new_accum = choice
        divisor = run.accumulation_divisor
        split = ""
        if divisor > 1:  # why it may be below the largest: the processes split the steps
            split = f" (a multiple of the {divisor} processes of {ctx.world_size.origin})"
        advice += (
            f"; batch_size={batch} with gradient_accumulation_steps={new_accum}{split} keeps"
            f" {run.tokens_per_iter:,} tokens per iteration"
        )
        edits = ConfigScope(ctx.config).set_values(
            {"batch_size": batch, "gradient_accumulation_steps": new_accum}
        )
        description = f"set batch_size = {batch}, gradient_accumulation_steps = {new_accum}"
        return ProposedFix(description, edits), advice


class MemoryNotChecked(Rule):
    """A config GPT501 cannot check: a value it needs is only known by running the config or
    train.py (an import, an environment variable, a call, an assignment inside `if`). The
    rule says so, once per file, at the line that made the value unknown (in this file, or
    train.py's default it names), with the way to supply the value: `gptlint --set KEY=VALUE`
    or `set = {KEY = VALUE}` under `[tool.gptlint]`, which apply it as nanoGPT's
    `--KEY=VALUE` does. It also speaks when the config changes a model argument that the
    fork's train.py passes to its own `GPTConfig` and nanoGPT's has not (`n_exp = 8` in a
    mixture-of-experts fork): gptlint's count and estimate model nanoGPT's GPT, so only
    `pytest --gpt-configs`, which builds the fork's model.py, can answer. It speaks, with the
    training script's line, when the run is not nanoGPT's GPT trained as nanoGPT trains it:
    the script builds another model (`model = Mamba(config)`), hands its model to another
    engine (`deepspeed.initialize(model=model)`, `FSDP(model)`), or imports its GPT from a
    module that is not in the project (name the file with the `model` setting). And when the
    fork's train.py has no key the run is derived from (`dataset`, `batch_size` ...), it says
    that the run cannot be derived.

    Values that are known but wrong (n_embd not divisible by n_head, an unknown dtype) are not
    reported here: their own rules report them.

    Why:
        GPT501 needs the whole run: the model's shape, the batch, the precision. When it
        cannot run, saying nothing would read as "fits".

    Fix safety:
        No fix: the value is only known when the config runs.
    """

    code = "GPT503"
    name = "memory-not-checked"
    severity = Severity.WARNING
    summary = "the memory check cannot run: a value only known at run time, or a fork's model"
    VALID = (
        Valid("batch_size = 8\n"),
        Valid("import os\nwandb_log = os.environ.get('WANDB') == '1'\n"),
        Valid(
            "import os\nbatch_size = int(os.environ['BS'])\n",
            settings={"overrides": ("batch_size=8",)},
        ),
    )
    INVALID = (
        Invalid(
            "import os\nbatch_size = int(os.environ['BS'])\n",
            line=2,
            col=1,
            message="not known without running the config",
        ),
        Invalid(
            "import os\nbatch_size = int(os.environ['BS'])\nn_layer = int(os.environ['L'])\n",
            line=3,
            col=1,
            message="supply them with --set n_layer=VALUE --set batch_size=VALUE",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        if not any(ctx.file.assignments_of(key) for key in _MEMORY_KEYS):
            return
        problems = ctx.training_run.problems
        if not problems or ctx.config.acted_on("eval_only") is True:
            return
        unknown = next((p for p in problems if p.unknown or p.architecture or p.missing), None)
        if unknown is None:
            return
        resolved = ctx.config.resolved(unknown.key)
        node: cst.CSTNode | None = None
        if resolved is not None and resolved.assignment is not None:
            node = resolved.assignment.target
        elif resolved is not None and resolved.binding is not None:
            node = resolved.binding.statement
        if unknown.architecture:
            way_out = "pytest --gpt-configs measures it with the fork's own model.py"
        elif unknown.missing:
            way_out = "gptlint derives runs the way nanoGPT's train.py builds them"
        else:
            keys = [p.key for p in problems if p.unknown]  # all of them at once, not one per rerun
            unknown_text = "; ".join(str(p) for p in problems if p.unknown)
            way_out = (
                f"supply {'it' if len(keys) == 1 else 'them'} with"
                f" {' '.join(f'--set {key}=VALUE' for key in keys)}"
                f" (or set = {{{', '.join(f'{key} = ...' for key in keys)}}} under"
                " [tool.gptlint])"
            )
            message = f"GPT501 not checked: {unknown_text}; {way_out}"
            yield Violation(node, message)
            return
        message = f"GPT501 not checked: {unknown}; {way_out}"
        yield Violation(node, message)


def _smaller_model(ctx: LintContext, run: TrainingRun) -> str:
    """What to do when no batch fits: a smaller GPT-2 checkpoint that fits at batch_size 1
    (for a fine-tune), else shrink the model or block_size."""
    name = run.model.init_from
    if name in PRESETS:
        for smaller_name in reversed(list(PRESETS)[: list(PRESETS).index(name)]):
            preset = PRESETS[smaller_name]
            shape = replace(
                run.spec.shape, n_layer=preset.n_layer, n_head=preset.n_head, n_embd=preset.n_embd
            )
            total = estimate_memory(replace(run.spec, shape=shape, batch_size=1), ctx.gpu).total
            if total <= ctx.budget:
                return f"init_from='{smaller_name}' fits at batch_size 1 ({format_gib(total)})"
    return "shrink the model or block_size"


def _shape_node(ctx: LintContext) -> cst.CSTNode | None:
    for key in ("block_size", "n_embd", "n_layer", "init_from"):
        node = target(ctx, key)
        if node is not None:
            return node
    return None


_CLAIM = re.compile(
    r"(?<![\w.])(?P<prefix>~|≈|about |approx\.? |approximately )?"
    r"(?P<number>\d+(?:\.\d+)?)\s?(?P<unit>[MB])\b"
    r"(?P<after>\s*\)|\s+[A-Za-z]+)?"
)
_NOT_PARAMS = frozenset(
    {
        "tokens", "token", "toks", "samples", "examples", "steps", "iterations", "iters",
        "words", "chars", "characters", "bytes", "rows", "lines", "documents", "docs", "images",
    }
)  # fmt: skip


def claims(text: str) -> Iterator[re.Match[str]]:
    """Parameter-count claims in a comment: `124M params`, `~125M parameters`, `(1.5B)`, or
    any `<number>M/B` in a comment that talks about parameters; never `0.5M tokens`."""
    talks_params = "param" in text.lower()
    for match in _CLAIM.finditer(text):
        after = (match.group("after") or "").strip().lower()
        if after in _NOT_PARAMS:
            continue
        in_parens = after == ")" and text[: match.start()].rstrip().endswith("(")
        if after.startswith("param") or in_parens or talks_params:
            yield match


def _claimed(match: re.Match[str]) -> int:
    scale = 10**9 if match.group("unit") == "B" else 10**6
    return round(float(match.group("number")) * scale)


def _restated(match: re.Match[str], count: int) -> str:
    """The true count written like the claim: `77M`, `1.6B`, `76.8M`."""
    number = match.group("number")
    decimals = len(number.split(".")[1]) if "." in number else 0
    if count >= 10**15:  # as format_params writes it: whole billions, no float
        return format_params(count)
    if count >= 10**9:
        return f"{count / 1e9:.{max(decimals, 1)}f}B"
    return f"{count / 1e6:.{decimals if match.group('unit') == 'M' else 0}f}M"


_SHAPE_IN_TEXT = re.compile(r"\b(?P<key>n_layer|n_head|n_embd)\s*[=:]\s*(?P<value>\d+)")
_PRESET_IN_TEXT = re.compile(r"\bgpt2-(?P<size>medium|large|xl)\b|['\"]gpt2['\"]", re.I)


def _line_of(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)]


def _describes_another_model(line: str, model: ModelSource) -> bool:
    """Whether a claim's line is about another model than the run's: it writes a shape
    (`n_layer=24`) or names a GPT-2 size (`'gpt2-xl': ...`) that is not this run's, as the
    tables of model sizes that configs copy from nanoGPT's `from_pretrained` do."""
    shape = model.shape
    for match in _SHAPE_IN_TEXT.finditer(line):
        if int(match.group("value")) != getattr(shape, match.group("key")):
            return True
    for match in _PRESET_IN_TEXT.finditer(line):
        name = "gpt2" + (f"-{match.group('size').lower()}" if match.group("size") else "")
        preset = PRESETS[name]
        ours = (shape.n_layer, shape.n_head, shape.n_embd)
        if (preset.n_layer, preset.n_head, preset.n_embd) != ours:
            return True
    return False


class ParameterClaimMismatch(Rule):
    """A parameter count claimed in a comment or the module docstring ("~125M parameters",
    "GPT-2 (124M)", "1.5B") that is more than 10% off the model train.py builds, counted as
    nanoGPT's `get_num_params()` does (position embeddings excluded; a claim that matches the
    count with them is accepted too); the message gives the true count. Numbers followed by
    "tokens", "samples", "steps" and the like are not claims, nor is a claim on a line that
    writes another shape (`n_layer=24`) or names another GPT-2 size
    (`'gpt2-xl': ... # 1558M params`): tables of model sizes describe other models.

    Why:
        The number is easy to get wrong when a shape is changed by hand: 12 layers with
        n_embd 576 is 76.77M, not the ~125M one might guess, and whoever picks the config
        goes by the comment.

    Fix safety:
        The fix rewrites the number in the comment; where the comment says the model the
        author meant, the shape is what is wrong.
    """

    code = "GPT502"
    name = "parameter-claim-mismatch"
    severity = Severity.WARNING
    summary = "a comment claims a parameter count > 10% off the computed one"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("# GPT-2 (124M)\nn_layer = 12\n"),
        Valid("# batch of ~0.5M tokens\nn_layer = 6\n"),
        Valid("init_from = 'gpt2-xl'  # 1.5B parameters\n"),
        Valid(  # a table of the other GPT-2 sizes, as copied from nanoGPT's from_pretrained
            "init_from = 'gpt2'\n"
            "# 'gpt2-medium': dict(n_layer=24, n_head=16, n_embd=1024), # 350M params\n"
            "# n_layer=36, n_head=20, n_embd=1280 is 774M\n"
        ),
    )
    INVALID = (
        Invalid(
            "n_layer = 12\nn_head = 12\nn_embd = 576  # ~125M parameters\n",
            "n_layer = 12\nn_head = 12\nn_embd = 576  # ~77M parameters\n",
            line=3,
            col=15,
            message="the comment claims ~125M parameters, but this config's model (12 layers,"
            " n_embd 576, vocab_size 50304) has 76.77M (nanoGPT's get_num_params(): position"
            " embeddings excluded): 63% too high",
            unsafe_fixes=True,
        ),
        Invalid(
            "# ~125M parameters\nn_layer = 12\nn_head = 12\nn_embd = 512\n",
            "# ~64M parameters\nn_layer = 12\nn_head = 12\nn_embd = 512\n",
            line=1,
            col=1,
            message="has 63.52M",
            unsafe_fixes=True,
        ),
        Invalid(
            '"""A 1.5B-parameter model."""\ninit_from = \'gpt2-medium\'\n',
            '"""A 354M-parameter model."""\ninit_from = \'gpt2-medium\'\n',
            line=1,
            col=1,
            message="gpt2-medium's model",
            unsafe_fixes=True,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        if next(claims(ctx.file.source.text), None) is None:
            return  # no claim anywhere in the file: skip walking the tree for comments
        nodes = ctx.comment_nodes
        model = ctx.model
        if not nodes or model is None:
            return
        count = model.shape.num_params()
        with_wpe = model.shape.num_params(non_embedding=False)
        for node, _ in nodes:
            raw = node.value
            for match in claims(raw):
                claimed = _claimed(match)
                if min(abs(claimed - count), abs(claimed - with_wpe)) <= 0.1 * count:
                    continue
                if _describes_another_model(_line_of(raw, match.start()), model):
                    continue
                yield self._violation(ctx, model, node, match, count)

    def _violation(
        self,
        ctx: LintContext,
        model: ModelSource,
        node: cst.Comment | cst.SimpleString,
        match: re.Match[str],
        count: int,
    ) -> Violation:
        said = "".join(match.group(k) or "" for k in ("prefix", "number", "unit")) + " parameters"
        whose = model.whose
        claimed = _claimed(match)
        off = abs(claimed - count) / count
        direction = "too high" if claimed > count else "too low"
        message = (
            f"the comment claims {said}, but {whose} has {format_params(count)} (nanoGPT's"
            f" get_num_params(): position embeddings excluded): {off:.0%} {direction}"
        )
        start, end = match.span("number")[0], match.span("unit")[1]
        new = _restated(match, count)
        text = node.value[:start] + new + node.value[end:]
        edit = Edit(node, _with_value(text))
        return Violation(node, message, ProposedFix(f"write {new} in the comment", (edit,)))


def _with_value(text: str) -> Rewrite:
    """A rewrite that gives a comment or string node the source text `text`."""
    return lambda old: old.with_changes(value=text)


_GIB_UNIT = r"(?P<unit>GB|GiB|G|gb|gib)\b"
_NUMBER = (
    r"(?P<prefix>~|≈|about |around |roughly |approx\.? |approximately )?"
    r"(?P<number>\d+(?:\.\d+)?)\s?"
)
_NOT_THE_RUN = (  # a size followed by a card's name is the card's, not the run's
    r"(?!\s*(?:of\s+)?(?:card|gpu|GPU|RTX|GTX|A100|H100|A6000|T4|V100|L4)\b)"
)
_FIT_CLAIM = re.compile(
    r"\bfits?\s+(?:\w+\s+){0,2}?(?:in|into|within|under)\s+(?:a\s+)?"
    + _NUMBER
    + _GIB_UNIT
    + _NOT_THE_RUN
)
_USE_CLAIM = re.compile(
    r"\b(?:uses?|needs?|takes?|requires?|consumes?|peaks?\s+at|peak\s+of)\s+"
    + _NUMBER
    + _GIB_UNIT
    + _NOT_THE_RUN
)
_MENTIONS = {
    "batch_size": re.compile(r"\bbatch(?:_size|\s+size)?\s*(?:=|of)?\s*(?P<number>\d+)\b"),
    "block_size": re.compile(r"\bblock(?:_size|\s+size)?\s*(?:=|of)?\s*(?P<number>\d+)\b"),
}


def memory_claims(text: str) -> Iterator[tuple[re.Match[str], bool]]:
    """Memory claims about the run in a comment, each with whether it is an upper bound
    ("should fit in ~10.5 GB") rather than a figure ("uses 9 GB"); never the card's own size
    ("a 12 GB RTX 4070")."""
    for match in _FIT_CLAIM.finditer(text):
        yield match, True
    for match in _USE_CLAIM.finditer(text):
        yield match, False


def _restated_gib(match: re.Match[str], size: int, bound: bool) -> str:
    """The estimate written like the claim, rounded up for a bound so that it stays true."""
    number = match.group("number")
    decimals = len(number.split(".")[1]) if "." in number else 0
    scale = 10**decimals
    value = size / 1024**3
    value = math.ceil(value * scale) / scale if bound else round(value, decimals)
    return f"{value:.{decimals}f}"


class MemoryClaimMismatch(Rule):
    """A memory claim in a comment or the module docstring ("batch 16 x block 1024 should fit
    easily in ~10.5 GB", "uses about 9 GB") that GPT501's estimate of the peak for the
    config's values contradicts: a "fits in X" claim when the estimate exceeds X, a figure
    ("uses X", "needs X", "peaks at X") when it is more than 10% off. GB and GiB are read
    alike, as nvidia-smi and PyTorch report GiB. A size followed by a card's name ("a 12 GB
    RTX 4070") describes the card, not the run. In a comment that makes a memory claim, a
    `batch N` or `block N` that differs from the config's batch_size or block_size contradicts
    it too.

    Why:
        The figure is easy to get wrong: the B x T x vocab logits and loss alone can take
        9 GiB, and a config that promises to fit is run on a card it does not fit.

    Fix safety:
        The fix writes the estimate (rounded up for a "fits in" claim) and the config's batch
        and block sizes into the comment, so that after `gptlint --fix --unsafe-fixes` no
        comment contradicts the values the file now holds; an estimate may replace a figure
        someone measured.
    """

    code = "GPT504"
    name = "memory-claim-mismatch"
    severity = Severity.WARNING
    summary = "a comment's memory claim contradicts the estimated peak for the config"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("# train on a 12 GB RTX 4070\nbatch_size = 4\n"),
        Valid("# batch 4 fits in 12 GB\nbatch_size = 4\n"),
        Valid("# uses ~9.5 GB\nbatch_size = 8\nn_embd = 576\ncompile = False\n"),
    )
    INVALID = (
        Invalid(
            "# batch 16 x block 1024 should fit easily in ~10.5 GB\nn_embd = 576\ncompile = False\n"
            "batch_size = 16\n",
            "# batch 16 x block 1024 should fit easily in ~17.1 GB\nn_embd = 576\ncompile = False\n"
            "batch_size = 16\n",
            line=1,
            col=1,
            message="the comment says the run fits in ~10.5 GB, but GPT501 estimates a peak of"
            " 17.01 GiB",
            unsafe_fixes=True,
        ),
        Invalid(
            "# batch 16 fits in 12 GB\nbatch_size = 4\n",
            "# batch 4 fits in 12 GB\nbatch_size = 4\n",
            line=1,
            col=1,
            message="batch 16 in the comment, but batch_size is 4",
            unsafe_fixes=True,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        text = ctx.file.source.text
        if next(memory_claims(text), None) is None:
            return  # no claim anywhere: skip walking the tree for comments
        run = ctx.training_run.value
        if run is None or run.spec.eval_only:
            return
        peak = estimate_memory(run.spec, ctx.gpu).total
        values = {"batch_size": run.spec.batch_size, "block_size": run.spec.block_size}
        for node, _ in ctx.comment_nodes:
            raw = node.value
            claims = list(memory_claims(raw))
            if not claims:
                continue
            wrong: list[tuple[int, int, str]] = []  # (start, end, replacement) in the comment
            said: list[str] = []
            for match, bound in claims:
                claimed = float(match.group("number")) * 1024**3
                if (peak > claimed) if bound else abs(peak - claimed) > 0.1 * claimed:
                    claim = (match.group("prefix") or "") + match.group("number")
                    verb = "fits in" if bound else "needs"
                    said.append(
                        f"the comment says the run {verb} {claim} {match.group('unit')}, but"
                        f" GPT501 estimates a peak of {format_gib(peak)}"
                    )
                    new = _restated_gib(match, peak, bound)
                    wrong.append((*match.span("number"), new))
            for key, pattern in _MENTIONS.items():
                for match in pattern.finditer(raw):
                    if int(match.group("number")) != values[key]:
                        said.append(
                            f"{match.group(0).strip()} in the comment, but {key} is {values[key]}"
                        )
                        wrong.append((*match.span("number"), str(values[key])))
            if not wrong:
                continue
            fixed = raw
            for start, end, new in sorted(wrong, reverse=True):
                fixed = fixed[:start] + new + fixed[end:]
            message = (
                "; ".join(said) + f" (batch_size {run.spec.batch_size} x block_size"
                f" {run.spec.block_size}, {run.spec.dtype},"
                f" {'compiled' if run.spec.compile else 'eager'}, on {ctx.gpu.name})"
            )
            edit = Edit(node, _with_value(fixed))
            yield Violation(node, message, ProposedFix("correct the comment", (edit,)))


RULES = [PeakMemoryAboveBudget, MemoryNotChecked, MemoryClaimMismatch, ParameterClaimMismatch]
