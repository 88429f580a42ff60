"""Attention-shape rules: what PyTorch's attention kernels and the vocabulary matmuls need."""

from __future__ import annotations

from collections.abc import Iterator

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import FixSafety, Severity
from gptlint.facts.units import format_gib
from gptlint.lint.context import LintContext
from gptlint.lint.diagnostics import Fix
from gptlint.lint.rules.base import Invalid, Rule, Valid, Violation
from gptlint.lint.rules.common import plausible_int, positive_int
from gptlint.lint.rules.shape import MAX_WIDTH, divisors, keep_width
from gptlint.lint.scopes import CallScope, ConfigScope
from gptlint.nanogpt.schema import KV_HEAD_KEYS
from gptlint.runmodel.estimate import math_attention_bytes
from gptlint.runmodel.trainingrun import ModelShape, StepSpec

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


def _head_fix(scope: Scope, choice: int, safety: str) -> Fix:
    return Fix(f"set n_head = {choice}", scope.set_value("n_head", choice), safety)


class HeadDimNotMultipleOf8(Rule):
    """The per-head width `head_dim = n_embd / n_head` decides which kernel
    `F.scaled_dot_product_attention` can use. The fused kernels want a multiple of 8: PyTorch
    2.1 and later pad q, k and v up to the next multiple of 8 before running flash attention
    (extra copies and wasted work), the memory-efficient and cuDNN kernels reject the shape,
    and PyTorch 2.0, ROCm builds and GPUs without flash attention (T4, V100) fall back to the
    math kernel. The math kernel materialises the B x H x T x T attention matrix of every
    layer and keeps it, in fp32, for the backward pass: a memory cliff that the message
    sizes for this config.

    The unsafe fix changes n_head to the divisor of n_embd nearest the current n_head whose
    head_dim is a multiple of 8 (the parameter count does not change, the architecture does).
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
            message="head_dim = 504/12 = 42 is not a multiple of 8",
            unsafe_fixes=True,
        ),
        Invalid(
            "n_head = 12\nn_embd = 720\n",
            "n_head = 10\nn_embd = 720\n",
            message="0.56 GiB per layer, 6.75 GiB for 12 layers at batch_size 12 x block_size 1024",
            unsafe_fixes=True,
        ),
        Invalid(
            "n_head = 12\nn_embd = 720\n",
            message="on t4, which has no flash attention, SDPA falls back to the math kernel",
            settings={"gpu": "t4"},
        ),
        Invalid(
            "cfg = GPTConfig(n_layer=4, n_head=4, n_embd=100)\n",
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
                fix = _head_fix(scope, choice.n_head, FixSafety.UNSAFE)
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
    """Flash attention supports head_dim (n_embd / n_head) up to 256. Above that SDPA runs the
    memory-efficient kernel, which is slower, or, when head_dim is not a multiple of 8 either,
    the math kernel, which keeps the B x H x T x T attention matrix of every layer. Very wide
    heads are also unusual: GPT-2 uses 64, most models 64-128.

    The unsafe fix raises n_head to the smallest count that gives a head_dim of at most 256
    and a multiple of 8 (the parameter count does not change).
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
            message="head_dim = 1024/2 = 512 is above 256: flash attention cannot run it, SDPA"
            " uses the memory-efficient kernel",
            unsafe_fixes=True,
        ),
        Invalid(
            "n_layer = 4\nn_head = 2\nn_embd = 520\nbatch_size = 4\nblock_size = 512\n",
            "n_layer = 4\nn_head = 5\nn_embd = 520\nbatch_size = 4\nblock_size = 512\n",
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
                fix = _head_fix(scope, choices[0], FixSafety.UNSAFE)
            yield Violation(scope.node_for("n_head") or scope.node_for("n_embd"), message, fix)


class HeadsNotDivisibleByKvHeads(Rule):
    """Grouped-query and multi-query attention share each key/value head among
    `n_head / n_kv_head` query heads, so the model's attention asserts (or reshapes in a way
    that fails) unless n_head is a multiple of the KV-head count. The rule reads the names
    forks and ports use: `n_kv_head`, `n_kv_heads`, `num_key_value_heads`, `n_query_groups`,
    `num_kv_heads` and similar. (Plain nanoGPT has no such key; GPT205 says so.)

    The safe fix sets the KV-head count to the divisor of n_head nearest to it (ties: the
    larger).
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
            message="n_head=12 is not divisible by n_kv_head=5",
        ),
        Invalid(
            "cfg = GPTConfig(n_head=32, n_embd=4096, n_query_groups=6)\n",
            "cfg = GPTConfig(n_head=32, n_embd=4096, n_query_groups=8)\n",
            message="n_head=32 is not divisible by n_query_groups=6",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for scope in ctx.shape_scopes:
            n_head = scope.value("n_head")
            if not positive_int(n_head) or n_head > MAX_WIDTH:
                continue
            for key in KV_HEAD_KEYS:
                kv = scope.value(key)
                if not positive_int(kv) or n_head % kv == 0:
                    continue
                best = min(divisors(n_head), key=lambda d: (abs(d - kv), -d))
                message = (
                    f"n_head={n_head} is not divisible by {key}={kv}: each key/value head must"
                    f" serve the same number of query heads ({n_head}/{kv} = {n_head / kv:.2f});"
                    f" use {key}={best} ({n_head // best} query heads per KV head)"
                )
                fix = Fix(f"set {key} = {best}", scope.set_value(key, best), FixSafety.SAFE)
                yield Violation(scope.node_for(key), message, fix)


class VocabNotMultipleOf64(Rule):
    """The token embedding and `lm_head` are vocab_size x n_embd matrices, and the logits
    matmul (B x T x vocab) is the largest in the model. A vocab_size that is not a multiple of
    64 leaves ragged tiles in those matmuls; nanoGPT pads GPT-2's 50257 to 50304 for this
    reason (the extra rows are never a target, so training is unchanged).

    The rule looks at vocab_size where it takes effect: a `GPTConfig(...)` call, a shape preset,
    or a fork whose train.py reads a `vocab_size` key (plain nanoGPT ignores the key: GPT205).
    The unsafe fix rounds it up to the next multiple of 64.
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
            fix = Fix(
                f"set vocab_size = {padded}",
                scope.set_value("vocab_size", padded),
                FixSafety.UNSAFE,
            )
            yield Violation(node, message, fix)


RULES = [HeadDimNotMultipleOf8, HeadDimAbove256, HeadsNotDivisibleByKvHeads, VocabNotMultipleOf64]
