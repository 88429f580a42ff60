"""A rule's code names its module: each code family (GPT1xx ...) lives in one module of
`gptlint.lint.rules`, which says so in its first words, and imports no other family's."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from gptlint.lint import rules
from gptlint.lint.rules import ALL_RULES, FAMILIES


def _family(code: str) -> str:
    return code[:4]  # GPT1 of GPT102


def test_each_family_lives_in_one_module_that_names_it():
    modules: dict[str, set[str]] = {}
    for rule in ALL_RULES:
        modules.setdefault(_family(rule.code), set()).add(rule.__module__)
    assert all(len(found) == 1 for found in modules.values()), modules
    for family in FAMILIES:
        codes = {_family(rule.code) for rule in family.RULES}
        assert len(codes) == 1, f"{family.__name__} holds several families: {sorted(codes)}"
        assert all(rule.__module__ == family.__name__ for rule in family.RULES)
        assert (family.__doc__ or "").startswith(f"{codes.pop()}xx"), family.__name__


def test_the_registry_is_every_family_in_code_order():
    assert [rule.code for rule in ALL_RULES] == sorted(rule.code for rule in ALL_RULES)
    assert len({rule.code for rule in ALL_RULES}) == len(ALL_RULES)
    assert {rule.__module__ for rule in ALL_RULES} == {f.__name__ for f in FAMILIES}


def _imported_rule_modules(path: Path) -> set[str]:
    """The `gptlint.lint.rules` submodules a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == rules.__name__:
            found |= {f"{rules.__name__}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith(rules.__name__ + ".")}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__.rpartition(".")[2])
def test_a_family_imports_no_other_family(family):
    others = {f.__name__ for f in FAMILIES} - {family.__name__}
    imported = _imported_rule_modules(Path(inspect.getfile(family)))
    assert not imported & others, f"{family.__name__} imports {sorted(imported & others)}"
