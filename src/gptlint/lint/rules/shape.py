"""Model-shape rules: what nanoGPT's `GPT.__init__` and attention kernels require."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from gptlint.facts.kinds import FixSafety, Severity
from gptlint.facts.units import format_params
from gptlint.lint.context import LintContext
from gptlint.lint.diagnostics import Fix
from gptlint.lint.rules.base import Invalid, Rule, Valid, Violation
from gptlint.lint.rules.common import positive_int
from gptlint.lint.scopes import CallScope, ConfigScope
from gptlint.runmodel.trainingrun import count_params

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
    """nanoGPT's `CausalSelfAttention.__init__` asserts `config.n_embd % config.n_head == 0`:
    the embedding is split evenly across the heads (head_dim = n_embd / n_head). A config that
    breaks this crashes at model construction, after the data has loaded.

    Either side may come from the defaults (n_head 12, n_embd 768 in nanoGPT's train.py, or the
    fork's train.py named by the `defaults` setting): `n_embd = 512` alone fails with the
    default 12 heads.

    The message names both ways out, each with its head_dim and parameter count (nanoGPT's
    `get_num_params()`, which leaves out position embeddings):

    * `keep-width` (the default `fix-strategy`): change n_head to the divisor of n_embd nearest
      the current n_head whose head_dim is a multiple of 8 (so fused attention kernels run),
      preferring head_dim 64 on ties. The parameter count does not change.
    * `keep-heads`: change n_embd to the nearest multiple of 8 x n_head (ties: the smaller).

    When no divisor of n_embd gives a head_dim that is a multiple of 8, `keep-width` falls back
    to `keep-heads`. When the value to change comes from the defaults, the fix adds the
    assignment to the file. `GPTConfig(...)` calls and shape presets (`dict(n_layer=...,
    n_head=..., n_embd=...)`) are checked the same way.
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
            message="n_embd=512 is not divisible by n_head=12 (512/12 = 42.67); use n_head=8"
            " (head_dim 64, 63.52M params, unchanged) or n_embd=480 (head_dim 40, 57.34M)"
            " / 576 (head_dim 48, 76.77M)",
        ),
        Invalid(
            "n_layer = 12\nn_head = 12\nn_embd = 512\n",
            "n_layer = 12\nn_head = 12\nn_embd = 480\n",
            settings={"fix_strategy": "keep-heads"},
        ),
        Invalid(
            "n_embd = 512  # from the default 12 heads\n",
            "n_embd = 512  # from the default 12 heads\nn_head = 8\n",
        ),
        Invalid("n_head = 5\n", "n_head = 6\n", message="n_embd=768 is not divisible by n_head=5"),
        Invalid(
            "config = GPTConfig(n_layer=6, n_head=6, n_embd=500)\n",
            "config = GPTConfig(n_layer=6, n_head=6, n_embd=480)\n",
            message="no n_head divides n_embd=500 into a head_dim that is a multiple of 8",
        ),
        Invalid("cfg = GPTConfig(n_embd=1000)\n", "cfg = GPTConfig(n_embd=1000, n_head=5)\n"),
        Invalid(
            "PRESETS = {\n    'small': dict(n_layer=4, n_head=3, n_embd=128),\n}\n",
            "PRESETS = {\n    'small': dict(n_layer=4, n_head=2, n_embd=128),\n}\n",
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
        fix = Fix(
            f"set {key} = {value}", scope.set_value(key, value), self.fix_safety or FixSafety.SAFE
        )
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


def _report_node(scope: ConfigScope | CallScope):
    """The later of the two assignments (the one that completes the contradiction)."""
    nodes = [scope.node_for("n_head"), scope.node_for("n_embd")]
    present = [n for n in nodes if n is not None]
    if isinstance(scope, CallScope):
        return present[0] if present else scope.call.node
    if not present:
        return None
    assignments = [scope.config.resolved(k).assignment for k in ("n_head", "n_embd")]
    ordered = sorted((a for a in assignments if a is not None), key=lambda a: a.index)
    return ordered[-1].target if ordered else None


RULES = [EmbdNotDivisibleByHeads]
