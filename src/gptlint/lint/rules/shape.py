"""GPT1xx, model shape: what nanoGPT's `GPT.__init__` asserts, what PyTorch's attention kernels
and the vocabulary matmuls need, and the values nanoGPT cannot build or run at all."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import FixSafety, Severity, ValueKind
from gptlint.facts.units import format_gib, format_params
from gptlint.facts.values import UNKNOWN
from gptlint.lint.context import LintContext
from gptlint.lint.rules.base import Invalid, ProposedFix, Rule, Valid, Violation
from gptlint.lint.rules.common import plausible_int, positive_int
from gptlint.lint.rules.impossible import problem
from gptlint.lint.scopes import CallScope, ConfigScope
from gptlint.nanogpt.schema import KV_HEAD_KEYS, NANOGPT_SCHEMA
from gptlint.runmodel.estimate import math_attention_bytes
from gptlint.runmodel.trainingrun import ModelShape, StepSpec, count_params

MAX_WIDTH = 1 << 20
"""Widths and head counts above this are not models anyone trains; rules that search divisors
skip them rather than loop for ever (`n_embd = 10 ** 30`)."""


@dataclass(frozen=True)
class HeadChoice:
    """A candidate shape: `n_head` heads over `n_embd` channels."""

    n_head: int
    n_embd: int

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def keep_width(n_embd: int, n_head: int) -> HeadChoice | None:
    """The divisor of n_embd nearest n_head whose head_dim is a multiple of 8 (ties: the one
    with head_dim nearest 64). None if n_embd has no such divisor."""
    aligned = [d for d in divisors(n_embd) if (n_embd // d) % 8 == 0]
    if not aligned:
        return None
    best = min(aligned, key=lambda d: (abs(d - n_head), abs(n_embd // d - 64)))
    return HeadChoice(best, n_embd)


@functools.lru_cache(maxsize=256)
def divisors(n: int) -> tuple[int, ...]:
    """The positive divisors of `n` (> 0) in ascending order, found in O(sqrt n) steps."""
    small, large = [], []
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
    return (*small, *reversed(large))


def keep_heads(n_embd: int, n_head: int) -> list[HeadChoice]:
    """The multiples of 8*n_head just below and above n_embd, nearest first (ties: smaller)."""
    step = 8 * n_head
    lower = n_embd // step * step
    candidates = [c for c in (lower, lower + step) if c > 0]
    candidates.sort(key=lambda c: (abs(c - n_embd), c))
    return [HeadChoice(n_head, c) for c in candidates]


class EmbdNotDivisibleByHeads(Rule):
    """An n_embd that n_head does not divide. Either side may come from the defaults
    (n_head 12, n_embd 768 in nanoGPT's train.py, or the fork's train.py named by the
    `defaults` setting): `n_embd = 512` alone fails with the default 12 heads.
    `GPTConfig(...)` calls and shape presets (`dict(n_layer=..., n_head=..., n_embd=...)`) are
    checked the same way.

    The message names both ways out, each with its head_dim and parameter count (nanoGPT's
    `get_num_params()`, which leaves out position embeddings):

    * `keep-width` (the default `fix-strategy`): change n_head to the divisor of n_embd nearest
      the current n_head whose head_dim is a multiple of 8 (so fused attention kernels run),
      preferring head_dim 64 on ties. The parameter count does not change.
    * `keep-heads`: change n_embd to the nearest multiple of 8 x n_head (ties: the smaller).

    When no divisor of n_embd gives a head_dim that is a multiple of 8, `keep-width` falls back
    to `keep-heads`.

    Why:
        nanoGPT's `CausalSelfAttention.__init__` asserts `config.n_embd % config.n_head == 0`:
        the embedding is split evenly across the heads (head_dim = n_embd / n_head). A config
        that breaks this crashes at model construction, after the data has loaded.

    Fix safety:
        The fix makes the change the `fix-strategy` setting names; when the value to change
        comes from the defaults, it adds the assignment to the file. The config could not
        build its model before, so no run that worked changes.
    """

    code = "GPT101"
    name = "embd-not-divisible-by-heads"
    severity = Severity.ERROR
    summary = "n_embd is not divisible by n_head (nanoGPT asserts n_embd % n_head == 0)"
    fix_safety = FixSafety.SAFE
    VALID = (
        Valid("n_layer = 12\nn_head = 8\nn_embd = 512\n"),
        Valid("n_embd = 64 * 9\nn_head = 9\n"),
        Valid("n_embd = 768\n"),
        Valid("init_from = 'gpt2'\nn_head = 12\nn_embd = 512\n"),
        Valid("import os\nn_head = int(os.environ['HEADS'])\nn_embd = 512\n"),
        Valid("if big:\n    n_embd = 1000\nn_head = 12\n"),
        Valid("n_embd = 1000\nif small: n_embd = 768\n"),
    )
    INVALID = (
        Invalid(
            "n_layer = 12\nn_head = 12\nn_embd = 512\n",
            "n_layer = 12\nn_head = 8\nn_embd = 512\n",
            line=3,
            col=1,
            message="n_embd=512 is not divisible by n_head=12 (512/12 = 42.67); use n_head=8"
            " (head_dim 64, 63.52M params, unchanged) or n_embd=480 (head_dim 40, 57.34M)"
            " / 576 (head_dim 48, 76.77M)",
        ),
        Invalid(
            "n_layer = 12\nn_head = 12\nn_embd = 512\n",
            "n_layer = 12\nn_head = 12\nn_embd = 480\n",
            line=3,
            col=1,
            settings={"fix_strategy": "keep-heads"},
        ),
        Invalid(
            "n_embd = 512  # from the default 12 heads\n",
            "n_embd = 512  # from the default 12 heads\nn_head = 8\n",
            line=1,
            col=1,
        ),
        Invalid(
            "n_head = 5\n",
            "n_head = 6\n",
            line=1,
            col=1,
            message="n_embd=768 is not divisible by n_head=5",
        ),
        Invalid(
            "config = GPTConfig(n_layer=6, n_head=6, n_embd=500)\n",
            "config = GPTConfig(n_layer=6, n_head=6, n_embd=480)\n",
            line=1,
            col=31,
            message="no n_head divides n_embd=500 into a head_dim that is a multiple of 8",
        ),
        Invalid(
            "cfg = GPTConfig(n_embd=1000)\n",
            "cfg = GPTConfig(n_embd=1000, n_head=5)\n",
            line=1,
            col=17,
        ),
        Invalid(
            "PRESETS = {\n    'small': dict(n_layer=4, n_head=3, n_embd=128),\n}\n",
            "PRESETS = {\n    'small': dict(n_layer=4, n_head=2, n_embd=128),\n}\n",
            line=2,
            col=30,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for scope in ctx.shape_scopes:
            n_embd, n_head = scope.value("n_embd"), scope.value("n_head")
            if not (positive_int(n_embd) and positive_int(n_head)) or n_embd % n_head == 0:
                continue
            if n_embd > MAX_WIDTH:
                continue
            yield self._violation(scope, n_embd, n_head, ctx.settings.fix_strategy)

    def _violation(
        self, scope: ConfigScope | CallScope, n_embd: int, n_head: int, strategy: str
    ) -> Violation:
        width = keep_width(n_embd, n_head)
        heads = keep_heads(n_embd, n_head)
        params = _param_counter(scope)
        options = []
        if width is not None:
            unchanged = f", {params(width)} params, unchanged" if params(width) else ""
            options.append(f"n_head={width.n_head} (head_dim {width.head_dim}{unchanged})")
        by_size = sorted(heads, key=lambda c: c.n_embd)
        sized = [f"{c.n_embd} (head_dim {c.head_dim}{_comma(params(c))})" for c in by_size]
        options.append("n_embd=" + " / ".join(sized))
        message = (
            f"n_embd={n_embd} is not divisible by n_head={n_head} "
            f"({n_embd}/{n_head} = {n_embd / n_head:.2f}); use " + " or ".join(options)
        )
        if width is None:
            message += (
                f" (no n_head divides n_embd={n_embd} into a head_dim that is a multiple of 8)"
            )
        if strategy == "keep-width" and width is not None:
            key, value = "n_head", width.n_head
        else:
            key, value = "n_embd", heads[0].n_embd
        fix = ProposedFix(f"set {key} = {value}", scope.set_value(key, value))
        node = _report_node(scope)
        return Violation(node, message, fix)


def _comma(text: str) -> str:
    return f", {text}" if text else ""


def _param_counter(scope: ConfigScope | CallScope):
    n_layer, vocab = scope.value("n_layer"), scope.value("vocab_size")
    block, bias = scope.value("block_size"), scope.value("bias")
    known = positive_int(n_layer) and positive_int(vocab) and isinstance(bias, bool)
    block = block if positive_int(block) else 0

    def params(choice: HeadChoice) -> str:
        if not known:
            return ""
        return format_params(count_params(n_layer, choice.n_embd, vocab, block, bias))

    return params


def _report_node(scope: ConfigScope | CallScope) -> cst.CSTNode | None:
    """The later of the two assignments (the one that completes the contradiction)."""
    nodes = [scope.node_for("n_head"), scope.node_for("n_embd")]
    present = [n for n in nodes if n is not None]
    if isinstance(scope, CallScope):
        return present[0] if present else scope.call.node
    if not present:
        return None
    resolved = [scope.config.resolved(k) for k in ("n_head", "n_embd")]
    assignments = [r.assignment for r in resolved if r is not None and r.assignment is not None]
    ordered = sorted(assignments, key=lambda a: a.index)
    return ordered[-1].target if ordered else None


Scope = ConfigScope | CallScope


def _heads(scope: Scope) -> tuple[int, int] | None:
    """(n_embd, n_head) when both are known positive ints and divide evenly."""
    n_embd, n_head = scope.value("n_embd"), scope.value("n_head")
    if not (positive_int(n_embd) and positive_int(n_head)) or n_embd > MAX_WIDTH:
        return None
    return (n_embd, n_head) if n_embd % n_head == 0 else None


def _math_cost(ctx: LintContext, scope: Scope, n_head: int) -> str:
    """`0.75 GiB per layer, 9.00 GiB for 12 layers at batch_size 16 x block_size 1024`."""
    batch, block = ctx.config.get("batch_size"), scope.value("block_size")
    n_layer, dropout = scope.value("n_layer"), ctx.config.get("dropout")
    if not (plausible_int(batch) and plausible_int(block) and plausible_int(n_layer)):
        return "B x H x T x T fp32 scores per layer"
    dropout = dropout if isinstance(dropout, float) else 0.0
    shape = ModelShape(n_layer, n_head, scope.value("n_embd"), block, 1, False, dropout)
    per_layer = math_attention_bytes(StepSpec(shape, batch, block, 1, "float32", False))
    return (
        f"{format_gib(per_layer)} per layer, {format_gib(per_layer * n_layer)} for"
        f" {n_layer} layers at batch_size {batch} x block_size {block}"
    )


def _head_fix(scope: Scope, choice: int) -> ProposedFix:
    return ProposedFix(f"set n_head = {choice}", scope.set_value("n_head", choice))


class HeadDimNotMultipleOf8(Rule):
    """A per-head width `head_dim = n_embd / n_head` that is not a multiple of 8. The message
    says what that costs on the target GPU (the `gpu` setting) and sizes the math kernel's
    attention matrices for this config.

    Why:
        head_dim decides which kernel `F.scaled_dot_product_attention` can use. The fused
        kernels want a multiple of 8: PyTorch 2.1 and later pad q, k and v up to the next
        multiple of 8 before running flash attention (extra copies and wasted work), the
        memory-efficient and cuDNN kernels reject the shape, and PyTorch 2.0, ROCm builds and
        GPUs without flash attention (T4, V100) fall back to the math kernel. The math kernel
        materialises the B x H x T x T attention matrix of every layer and keeps it, in fp32,
        for the backward pass: a memory cliff.

    Fix safety:
        The fix changes n_head to the divisor of n_embd nearest the current n_head whose
        head_dim is a multiple of 8: the parameter count does not change, the architecture
        (and so what the run trains) does.
    """

    code = "GPT102"
    name = "head-dim-not-multiple-of-8"
    severity = Severity.WARNING
    summary = "head_dim is not a multiple of 8: flash pads it, other fused kernels reject it"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("n_layer = 12\nn_head = 12\nn_embd = 576\n"),
        Valid("n_head = 12\nn_embd = 512\n"),
        Valid("n_head = 6\nn_embd = 384\n"),
    )
    INVALID = (
        Invalid(
            "n_layer = 12\nn_head = 12\nn_embd = 504\nbatch_size = 16\n",
            "n_layer = 12\nn_head = 9\nn_embd = 504\nbatch_size = 16\n",
            line=2,
            col=1,
            message="head_dim = 504/12 = 42 is not a multiple of 8",
            unsafe_fixes=True,
        ),
        Invalid(
            "n_head = 12\nn_embd = 720\n",
            "n_head = 10\nn_embd = 720\n",
            line=1,
            col=1,
            message="0.56 GiB per layer, 6.75 GiB for 12 layers at batch_size 12 x block_size 1024",
            unsafe_fixes=True,
        ),
        Invalid(
            "n_head = 12\nn_embd = 720\n",
            line=1,
            col=1,
            message="on t4, which has no flash attention, SDPA falls back to the math kernel",
            settings={"gpu": "t4"},
        ),
        Invalid(
            "cfg = GPTConfig(n_layer=4, n_head=4, n_embd=100)\n",
            line=1,
            col=28,
            message="head_dim = 100/4 = 25",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for scope in ctx.shape_scopes:
            heads = _heads(scope)
            if heads is None or (heads[0] // heads[1]) % 8 == 0:
                continue
            n_embd, n_head = heads
            head_dim = n_embd // n_head
            message = (
                f"head_dim = {n_embd}/{n_head} = {head_dim} is not a multiple of 8: "
                + _consequence(ctx.gpu, head_dim, _math_cost(ctx, scope, n_head))
            )
            choice = keep_width(n_embd, n_head)
            fix = None
            if choice is not None:
                message += f"; use n_head={choice.n_head} (head_dim {choice.head_dim})"
                fix = _head_fix(scope, choice.n_head)
            else:
                message += f"; n_embd={n_embd} is not a multiple of 8, so no n_head helps"
            yield Violation(scope.node_for("n_head") or scope.node_for("n_embd"), message, fix)


def _consequence(gpu: GpuProfile, head_dim: int, cost: str) -> str:
    padded = -(-head_dim // 8) * 8
    math = f"the math kernel, which keeps the B x H x T x T attention matrix: {cost}"
    if gpu.flash_attention:
        return (
            f"on {gpu.name} PyTorch >= 2.1 pads q, k, v to head_dim {padded} for flash attention"
            f" ({(padded - head_dim) / padded:.0%} of the attention work wasted) and the"
            f" memory-efficient kernel rejects it; PyTorch 2.0 and GPUs without flash attention"
            f" fall back to {math}"
        )
    return (
        f"on {gpu.name}, which has no flash attention, SDPA falls back to {math}"
        " (the memory-efficient kernel needs a multiple of 8)"
    )


class HeadDimAbove256(Rule):
    """A head_dim (n_embd / n_head) above 256, the widest flash attention supports.

    Why:
        Above 256 SDPA runs the memory-efficient kernel, which is slower, or, when head_dim is
        not a multiple of 8 either, the math kernel, which keeps the B x H x T x T attention
        matrix of every layer. Very wide heads are also unusual: GPT-2 uses 64, most models
        64-128.

    Fix safety:
        The fix raises n_head to the smallest count that gives a head_dim of at most 256 and
        a multiple of 8: the parameter count does not change, the architecture does.
    """

    code = "GPT103"
    name = "head-dim-above-256"
    severity = Severity.WARNING
    summary = "head_dim (n_embd / n_head) is above 256: no flash attention"
    fix_safety = FixSafety.UNSAFE
    VALID = (Valid("n_head = 4\nn_embd = 1024\n"), Valid("n_head = 3\nn_embd = 768\n"))
    INVALID = (
        Invalid(
            "n_head = 2\nn_embd = 1024\n",
            "n_head = 4\nn_embd = 1024\n",
            line=1,
            col=1,
            message="head_dim = 1024/2 = 512 is above 256: flash attention cannot run it, SDPA"
            " uses the memory-efficient kernel",
            unsafe_fixes=True,
        ),
        Invalid(
            "n_layer = 4\nn_head = 2\nn_embd = 520\nbatch_size = 4\nblock_size = 512\n",
            "n_layer = 4\nn_head = 5\nn_embd = 520\nbatch_size = 4\nblock_size = 512\n",
            line=2,
            col=1,
            message="the math kernel",
            unsafe_fixes=True,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for scope in ctx.shape_scopes:
            heads = _heads(scope)
            if heads is None or heads[0] // heads[1] <= 256:
                continue
            n_embd, n_head = heads
            head_dim = n_embd // n_head
            message = f"head_dim = {n_embd}/{n_head} = {head_dim} is above 256: flash attention"
            if head_dim % 8 == 0:
                message += " cannot run it, SDPA uses the memory-efficient kernel (slower)"
            else:
                message += (
                    " cannot run it and, as it is not a multiple of 8, SDPA falls back to the"
                    " math kernel, which keeps the B x H x T x T attention matrix: "
                    + _math_cost(ctx, scope, n_head)
                )
            choices = [
                d
                for d in range(n_head + 1, n_embd + 1)
                if n_embd % d == 0 and n_embd // d <= 256 and (n_embd // d) % 8 == 0
            ]
            fix = None
            if choices:
                message += f"; use n_head={choices[0]} (head_dim {n_embd // choices[0]})"
                fix = _head_fix(scope, choices[0])
            yield Violation(scope.node_for("n_head") or scope.node_for("n_embd"), message, fix)


class HeadsNotDivisibleByKvHeads(Rule):
    """An n_head that is not a multiple of the key/value-head count. The rule reads the names
    forks and ports use: `n_kv_head`, `n_kv_heads`, `num_key_value_heads`, `n_query_groups`,
    `num_kv_heads` and similar. (Plain nanoGPT has no such key; GPT205 says so.)

    Why:
        Grouped-query and multi-query attention share each key/value head among
        `n_head / n_kv_head` query heads, so the model's attention asserts (or reshapes in a
        way that fails) unless n_head is a multiple of the KV-head count.

    Fix safety:
        The fix sets the KV-head count to the divisor of n_head nearest to it (ties: the
        larger). The model could not be built before, so no run that worked changes.
    """

    code = "GPT104"
    name = "heads-not-divisible-by-kv-heads"
    severity = Severity.ERROR
    summary = "n_head is not divisible by the KV-head / query-group count"
    fix_safety = FixSafety.SAFE
    VALID = (
        Valid("n_head = 12\nn_kv_head = 4\n"),
        Valid("n_head = 32\nnum_key_value_heads = 8\n"),
        Valid("n_head = 12\n"),
    )
    INVALID = (
        Invalid(
            "n_head = 12\nn_embd = 768\nn_kv_head = 5\n",
            "n_head = 12\nn_embd = 768\nn_kv_head = 6\n",
            line=3,
            col=1,
            message="n_head=12 is not divisible by n_kv_head=5",
        ),
        Invalid(
            "cfg = GPTConfig(n_head=32, n_embd=4096, n_query_groups=6)\n",
            "cfg = GPTConfig(n_head=32, n_embd=4096, n_query_groups=8)\n",
            line=1,
            col=41,
            message="n_head=32 is not divisible by n_query_groups=6",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for scope in ctx.shape_scopes:
            n_head = scope.value("n_head")
            if not positive_int(n_head) or n_head > MAX_WIDTH:
                continue
            for key in KV_HEAD_KEYS:
                if isinstance(scope, ConfigScope) and _not_passed(ctx, key):
                    yield from _model_default_kv(ctx, scope, n_head, key)
                    continue
                kv = scope.value(key)
                if not positive_int(kv) or n_head % kv == 0:
                    continue
                best = min(divisors(n_head), key=lambda d: (abs(d - kv), -d))
                message = (
                    f"n_head={n_head} is not divisible by {key}={kv}: each key/value head must"
                    f" serve the same number of query heads ({n_head}/{kv} = {n_head / kv:.2f});"
                    f" use {key}={best} ({n_head // best} query heads per KV head)"
                )
                fix = ProposedFix(f"set {key} = {best}", scope.set_value(key, best))
                yield Violation(scope.node_for(key), message, fix)


def _not_passed(ctx: LintContext, key: str) -> bool:
    """Whether the fork's train.py (read: not nanoGPT's stand-in) gives its model no `key`: not
    a key of its own, not in its `model_args` (a config that sets it changes nothing: GPT205)."""
    schema = ctx.config.schema
    return schema is not NANOGPT_SCHEMA and key not in schema and key not in schema.model_args


def _model_default_kv(
    ctx: LintContext, scope: ConfigScope, n_head: int, key: str
) -> Iterator[Violation]:
    """The model's own `GPTConfig` default for `key`, which the model builds with where train.py
    does not pass the key: an n_head the config sets that it does not divide fails the model's
    assert. Said at n_head (the key has no effect), without a fix (n_head changes the model's
    shape)."""
    kv = (ctx.gptconfig_defaults or {}).get(key)
    node = scope.node_for("n_head")
    if node is None or not positive_int(kv) or n_head % kv == 0:
        return  # (an n_head of train.py's default is not this config's doing)
    fitting = [h for h in (n_head - n_head % kv, n_head - n_head % kv + kv) if h > 0]
    message = (
        f"n_head={n_head} is not divisible by {key}={kv}, the model's GPTConfig default (train.py"
        f" does not pass {key}): each key/value head must serve the same number of query heads,"
        f" so building the model fails; use an n_head divisible by {kv}"
        + (f" ({' or '.join(map(str, fitting))})" if fitting else "")
    )
    yield Violation(node, message)


class VocabNotMultipleOf64(Rule):
    """A vocab_size that is not a multiple of 64, where it takes effect: a `GPTConfig(...)`
    call, a shape preset, or a fork whose train.py reads a `vocab_size` key (plain nanoGPT
    ignores the key: GPT205).

    Why:
        The token embedding and `lm_head` are vocab_size x n_embd matrices, and the logits
        matmul (B x T x vocab) is the largest in the model. A vocab_size that is not a
        multiple of 64 leaves ragged tiles in those matmuls; nanoGPT pads GPT-2's 50257 to
        50304 for this reason (the extra rows are never a target, so training is unchanged).

    Fix safety:
        The fix rounds vocab_size up to the next multiple of 64: the model gains rows, so its
        parameter count and the shape of its checkpoints change.
    """

    code = "GPT105"
    name = "vocab-not-multiple-of-64"
    severity = Severity.INFO
    summary = "vocab_size is not a multiple of 64 (nanoGPT pads 50257 to 50304)"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("cfg = GPTConfig(vocab_size=50304)\n"),
        Valid("vocab_size = 50257  # ignored by nanoGPT's train.py\n"),
        Valid("dataset = 'shakespeare_char'\n"),
    )
    INVALID = (
        Invalid(
            "cfg = GPTConfig(n_layer=12, vocab_size=50257)\n",
            "cfg = GPTConfig(n_layer=12, vocab_size=50304)\n",
            line=1,
            col=29,
            message="vocab_size=50257 is not a multiple of 64",
            unsafe_fixes=True,
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        read = "vocab_size" in ctx.config.schema
        for scope in ctx.shape_scopes:
            if isinstance(scope, ConfigScope) and not read:
                continue  # plain nanoGPT ignores the key (GPT205)
            node = scope.node_for("vocab_size")
            vocab = scope.value("vocab_size")
            if node is None or not positive_int(vocab) or vocab % 64 == 0:
                continue
            padded = -(-vocab // 64) * 64
            message = (
                f"vocab_size={vocab} is not a multiple of 64: the embedding and the B x T x"
                f" vocab logits matmul run on ragged tiles; use {padded} (nanoGPT pads 50257 to"
                f" 50304 the same way; the {padded - vocab} extra rows are never a target)"
            )
            fix = ProposedFix(f"set vocab_size = {padded}", scope.set_value("vocab_size", padded))
            yield Violation(node, message, fix)


class ImpossibleValue(Rule):
    """A value nanoGPT cannot train with: a size or count below 1 or written as a float
    (`batch_size = 12.0` fails in `torch.randint`, `n_layer = 6.0` in `range()`), a size or
    count of 10**15 or more (`n_embd = 2**63`: nothing that size can be built or run, and
    the other rules skip such sizes rather than compute with them), a zero `eval_interval` or
    `log_interval` (`iter_num % 0`), dropout outside [0, 1) (nn.Dropout rejects it; 1 zeroes
    everything), or an optimizer setting AdamW rejects (negative learning_rate or
    weight_decay, beta1/beta2 outside [0, 1)). The same checks apply to `GPTConfig(...)`
    arguments.

    Why:
        These crash the run, most of them after the data has loaded.

    Fix safety:
        No fix: the intended value is not known.
    """

    code = "GPT106"
    name = "impossible-value"
    severity = Severity.ERROR
    summary = (
        "impossible value: non-positive size or count, float where int, dropout outside [0, 1)"
    )
    VALID = (
        Valid("batch_size = 12\ndropout = 0.1\n"),
        Valid("learning_rate = 0.0\nbeta2 = 0.99\n"),
        Valid("max_iters = 0\n"),
    )
    INVALID = (
        Invalid("batch_size = 0\n", line=1, col=1, message="batch_size=0 must be at least 1"),
        Invalid("n_layer = 6.0\n", line=1, col=1, message="n_layer=6.0 is a float"),
        Invalid("dropout = 1.0\n", line=1, col=1, message="dropout=1.0 is outside [0, 1)"),
        Invalid("eval_interval = 0\n", line=1, col=1, message="ZeroDivisionError"),
        Invalid("beta2 = 1.0\n", line=1, col=1, message="Invalid beta parameter at index 1"),
        Invalid(
            "cfg = GPTConfig(n_layer=-1)\n", line=1, col=17, message="n_layer=-1 must be at least 1"
        ),
        Invalid(
            "n_embd = 2**63\n",
            line=1,
            col=1,
            message="n_embd=9223372036854775808 is implausibly large",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for key in dict.fromkeys(a.key for a in ctx.file.assignments):
            resolved = ctx.config.resolved(key)
            if resolved is None or resolved.kind != ValueKind.FILE or resolved.assignment is None:
                continue
            message = problem(key, resolved.value)
            if message is not None:
                yield Violation(resolved.assignment.target, message)
        for scope in ctx.shape_scopes:
            if isinstance(scope, CallScope):
                yield from self._call(scope)

    def _call(self, scope: CallScope) -> Iterator[Violation]:
        for key, (_, node) in scope.call.args.items():
            value = scope.value(key)
            message = None if value is UNKNOWN else problem(key, value)
            if message is not None and isinstance(node, cst.CSTNode):
                yield Violation(node, message)


RULES = [
    EmbdNotDivisibleByHeads,
    HeadDimNotMultipleOf8,
    HeadDimAbove256,
    HeadsNotDivisibleByKvHeads,
    VocabNotMultipleOf64,
    ImpossibleValue,
]
