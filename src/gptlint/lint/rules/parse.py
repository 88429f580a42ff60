"""GPT0xx, reading: the file cannot be read or parsed."""

from __future__ import annotations

from collections.abc import Iterator

from gptlint.facts.kinds import Severity
from gptlint.lint.rules.base import Invalid, Rule, Valid, Violation


class UnreadableFile(Rule):
    """A file that cannot be read as Python: a syntax error, bytes that are not valid in its
    encoding, a binary file, or a file that cannot be opened. The diagnostic points at the line
    (and column) where reading stopped; the other files are still linted, and gptlint exits
    with 2.

    Why:
        nanoGPT would crash on it when `configurator.py` runs `exec(open(file).read())`.

    Fix safety:
        No fix: what the file should say is not known.
    """

    code = "GPT000"
    name = "unreadable-file"
    severity = Severity.ERROR
    summary = "The file cannot be read or parsed"
    VALID = (Valid("n_layer = 12\n"),)
    INVALID = (
        Invalid("n_layer = = 12\n", line=1, col=11, message="syntax error"),
        Invalid("n_head = (12\n", line=1, col=10, message="syntax error"),
    )

    def check(self, ctx) -> Iterator[Violation]:  # reported by the linter itself, before rules
        return iter(())


RULES = [UnreadableFile]
