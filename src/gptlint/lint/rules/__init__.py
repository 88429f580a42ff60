"""The rule registry: every rule class, in code order, from its family's module."""

from __future__ import annotations

from gptlint.lint.rules import keys, memory, nanochat, parse, pretrained, shape, training
from gptlint.lint.rules.base import Rule

FAMILIES = (parse, shape, keys, pretrained, training, memory, nanochat)
"""One module per code family, in code order: GPT0xx in `parse`, GPT1xx in `shape` ... GPT5xx
in `memory`, GPT6xx (nanochat run scripts) in `nanochat`. A family's module imports no other
family's (shared helpers: `common`, `impossible`)."""

ALL_RULES: list[type[Rule]] = sorted(
    [rule for family in FAMILIES for rule in family.RULES], key=lambda rule: rule.code
)
RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}
RULE_CODES: tuple[str, ...] = tuple(RULES_BY_CODE)
"""Every rule's code: what the settings loaders check `select` and `ignore` against."""


def enabled_codes(select: tuple[str, ...] | None, ignore: tuple[str, ...]) -> set[str]:
    """The codes that run: the most specific matching prefix decides (Ruff's rule); with no
    `select`, the rules that are on by default."""
    enabled = set()
    for rule in ALL_RULES:
        chosen = _longest_prefix(rule.code, select or ())
        dropped = _longest_prefix(rule.code, ignore)
        on = rule.default_enabled if select is None and chosen is None else chosen is not None
        if dropped is not None and _specificity(dropped) >= _specificity(chosen):
            on = False
        if on:
            enabled.add(rule.code)
    return enabled


def _specificity(prefix: str | None) -> int:
    if prefix is None:
        return -1
    return 0 if prefix == "ALL" else len(prefix)


def _longest_prefix(code: str, prefixes: tuple[str, ...]) -> str | None:
    matches = [p for p in prefixes if p == "ALL" or code.startswith(p)]
    return max(matches, key=_specificity, default=None)
