"""Which globals a training script reads after `exec`ing the configurator: a config runs in the
script's globals, so any name the script reads later takes the config's value, unless the
script surely assigns it first (nanoGPT's `lr = get_lr(iter_num)` at the top of its loop)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator

# (name, whether it is read, whether the statement surely runs when its code is reached)
Event = tuple[str, bool, bool]

if sys.version_info >= (3, 11):
    _TRY: tuple[type[ast.stmt], ...] = (ast.Try, ast.TryStar)
else:  # pragma: no cover - Python 3.10 has no `try: ... except*`
    _TRY = (ast.Try,)


def names_read_after(tree: ast.Module, start: int) -> frozenset[str]:
    """The names the statements `tree.body[start:]` may read before assigning them: the first
    time a name occurs there in execution order is a read, or an assignment that may not run
    (inside an `if`, a `for` loop, an `except`). A function's reads of globals count where it is
    defined (it may be called from any later line)."""
    decided: set[str] = set()
    read: set[str] = set()
    for name, is_read, certain in _events(tree.body[start:], True):
        if name in decided:
            continue
        decided.add(name)
        if is_read or not certain:
            read.add(name)
    return frozenset(read)


def _events(statements: list[ast.stmt], certain: bool) -> Iterator[Event]:
    for statement in statements:
        yield from _statement(statement, certain)


def _statement(node: ast.stmt, certain: bool) -> Iterator[Event]:
    if isinstance(node, ast.Assign | ast.AnnAssign):
        if node.value is not None:
            yield from _reads(node.value, certain)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            yield from _stores(target, certain)
    elif isinstance(node, ast.AugAssign):
        yield from _reads(node.value, certain)
        yield from _reads(node.target, certain)
    elif isinstance(node, ast.Import | ast.ImportFrom):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0], False, certain
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield from ((name, True, certain) for name in sorted(_global_reads(node)))
        yield node.name, False, certain
    elif isinstance(node, ast.If):
        yield from _reads(node.test, certain)
        yield from _events(node.body, False)
        yield from _events(node.orelse, False)
    elif isinstance(node, ast.While):
        yield from _reads(node.test, certain)
        forever = isinstance(node.test, ast.Constant) and bool(node.test.value)
        yield from _events(node.body, certain and forever)
        yield from _events(node.orelse, False)
    elif isinstance(node, ast.For | ast.AsyncFor):
        yield from _reads(node.iter, certain)
        yield from _stores(node.target, False)
        yield from _events(node.body, False)
        yield from _events(node.orelse, False)
    elif isinstance(node, ast.With | ast.AsyncWith):
        for item in node.items:
            yield from _reads(item.context_expr, certain)
            if item.optional_vars is not None:
                yield from _stores(item.optional_vars, certain)
        yield from _events(node.body, certain)
    elif isinstance(node, _TRY):
        yield from _events(node.body, certain)
        for handler in node.handlers:
            yield from _events(handler.body, False)
        yield from _events(node.orelse, False)
        yield from _events(node.finalbody, certain)
    else:  # expressions, return, del, match ...: every name a read, none sure to run
        yield from _reads(node, certain)


def _reads(node: ast.AST, certain: bool) -> Iterator[Event]:
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            yield child.id, True, certain


def _stores(target: ast.AST, certain: bool) -> Iterator[Event]:
    """`a, b.c, d[i] = ...`: a plain name is stored; in `b.c` and `d[i]`, b and d are read."""
    if isinstance(target, ast.Name):
        yield target.id, False, certain
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _stores(element, certain)
    elif isinstance(target, ast.Starred):
        yield from _stores(target.value, certain)
    else:
        yield from _reads(target, certain)


def _global_reads(node: ast.AST) -> set[str]:
    """The global names a function or class body may read or set: its names less its own
    locals (parameters and names it assigns), plus those it declares `global`."""
    declared: set[str] = set()
    local: set[str] = set()
    used: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Global):
            declared.update(child.names)
        elif isinstance(child, ast.arg):
            local.add(child.arg)
        elif isinstance(child, ast.Name):
            (used if isinstance(child.ctx, ast.Load) else local).add(child.id)
    return (used - local) | declared
