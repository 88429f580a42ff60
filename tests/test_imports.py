"""No import cycles: each package's modules, read statically, form a graph without loops.

Every `import`/`from … import` of `gptlint` or `pytest_gptcfg` counts, wherever it is written
(a function-level import that dodges a cycle is still a cycle), except inside an
`if TYPE_CHECKING:` block, which never runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGES = ("gptlint", "pytest_gptcfg")


def _modules() -> dict[str, Path]:
    """Every module of PACKAGES by dotted name (a package by its own name, for __init__.py)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((SRC / package).rglob("*.py")):
            parts = path.relative_to(SRC).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements anywhere in `tree`, skipping `if TYPE_CHECKING:` bodies."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that importing `name` loads: `name` or its longest known prefix."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(module: str, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]):
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            is_package = modules[module].name == "__init__.py"
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from pkg import sub` loads pkg.sub when it is a module, else just pkg.
        names = [f"{base}.{alias.name}" for alias in node.names]
        names = [name if name in modules else base for name in names]
    for name in names:
        owner = _owner(name, modules)
        if owner is not None and owner != module:
            yield owner


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _imports(tree):
            graph[name].update(_targets(name, node, modules))
    return graph


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete loop through the component's first module, for the failure message."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return component  # pragma: no cover - a component always has a loop


@pytest.mark.parametrize("package", ["gptlint", "pytest_gptcfg"])
def test_no_import_cycles(package: str) -> None:
    graph = import_graph()
    cycles = [
        " -> ".join(_cycle(graph, component))
        for component in _components(graph)
        if any(m == package or m.startswith(package + ".") for m in component)
    ]
    assert not cycles, f"import cycles in {package}:\n" + "\n".join(cycles)


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert (
        "gptlint.command.invocation" in graph["gptlint.command.cli"]
    )  # main()'s lazy import, kept for start-up
    assert (
        "gptlint.lint.context" not in graph["gptlint.lint.rules.base"]
    )  # only under TYPE_CHECKING


LAYERS: tuple[tuple[str, ...], ...] = (
    ("facts",),
    ("text",),
    ("runmodel",),
    ("nanogpt", "nanochat"),
    ("settings",),
    ("lint",),
    ("output",),
    ("command",),
)
"""gptlint's groups, bottom to top: each imports only the groups of the layers before its own,
and itself (groups of one layer, the front ends, do not import each other).
docs/ARCHITECTURE.md draws the same order."""


def _group(module: str) -> str | None:
    """`module`'s group (`gptlint.lint.rules.keys` -> `lint`); None for the package's own top
    level or a module in no group."""
    parts = module.split(".")
    known = {group for layer in LAYERS for group in layer}
    return parts[1] if len(parts) > 1 and parts[1] in known else None


def _layer(group: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if group in layer)


def test_every_gptlint_module_is_in_a_group() -> None:
    loose = [m for m in import_graph() if m.startswith("gptlint.") and _group(m) is None]
    assert loose == ["gptlint.__main__"], loose


def test_groups_import_only_the_layers_below() -> None:
    graph = import_graph()
    wrong = [
        f"{module} ({group}) imports {target} ({other})"
        for module, targets in sorted(graph.items())
        if module.startswith("gptlint.") and (group := _group(module)) is not None
        for target in sorted(targets)
        if (other := _group(target)) is not None
        and other != group
        and _layer(other) >= _layer(group)
    ]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)
