"""The tokenizer's vocabulary size a run trains with: the `--vocab-size` of the run
script's last `scripts.tok_train` run before the invocation, else tok_train.py's default."""

from __future__ import annotations

from collections.abc import Sequence

from gptlint.nanochat.checkout import Checkout
from gptlint.nanochat.flagvalues import flag_values
from gptlint.nanochat.runscript import Invocation, bare_invocation
from gptlint.runmodel.trainingrun import Problem


def tokenizer_vocab(
    checkout: Checkout, earlier: Sequence[Invocation]
) -> tuple[int, str] | list[Problem]:
    """The vocab size and where it comes from, or why it cannot be had."""
    entry = checkout.entry("tok_train")
    if entry is None:
        return [
            Problem(
                "vocab_size",
                f"{checkout.root}/scripts/tok_train.py is missing: the "
                "tokenizer's vocab size is not known",
                unknown=True,
            )
        ]
    runs = [i for i in earlier if i.script == "tok_train"]
    if runs:
        values = flag_values(runs[-1], entry)
        vocab = values.integer("vocab_size")
        origin = (
            f"--vocab-size of scripts.tok_train (line {runs[-1].line})"
            if values.given("vocab_size")
            else f"tok_train.py's default (its run at line {runs[-1].line} gives none)"
        )
    else:
        values = flag_values(bare_invocation("tok_train"), entry)
        vocab = values.integer("vocab_size")
        origin = "tok_train.py's default (the script trains no tokenizer)"
    if vocab is None or values.problems:
        return values.problems or [Problem("vocab_size", "no vocab size", unknown=True)]
    return vocab, f"vocab {vocab} from {origin}"
