"""The project's files a model's module imports, read from its import statements (nothing is
run): what a compiled plan of the model depends on beside the module itself (`usermodel`'s
digest), however deep in the project's packages they are."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from gptlint.nanogpt.forkmodel import module_file


def imported_files(path: Path, folders: tuple[Path, ...]) -> set[Path]:
    """`path`, and the files of the project its import statements reach, and theirs in turn,
    wherever a statement is (in a function, under an `if`): the modules found as Python finds
    them with `folders` first on the import path, or, for a relative import, in the importing
    module's package (and its `__init__.py`). `import a.b` reaches `a/__init__.py` and
    `a/b.py`; `from a import b` also `a/b.py` where `b` is a module. A file that cannot be
    read or parsed is kept, and what it imports is not read."""
    found = {path}
    todo = [path]
    while todo:
        for file in _reached(todo.pop(), folders):
            if file not in found:
                found.add(file)
                todo.append(file)
    return found


def _reached(file: Path, folders: tuple[Path, ...]) -> Iterator[Path]:
    """The project's files the import statements of `file` name."""
    try:
        tree = ast.parse(file.read_bytes())
    except (OSError, SyntaxError, ValueError, MemoryError, RecursionError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _files(folders, alias.name)
        elif isinstance(node, ast.ImportFrom):
            bases = folders if node.level == 0 else _package_folder(file, node.level)
            names = [alias.name for alias in node.names if alias.name != "*"]
            prefix = f"{node.module}." if node.module else ""
            if node.level:  # the package it is read in runs first
                yield from (b / "__init__.py" for b in bases if (b / "__init__.py").is_file())
            if node.module:
                yield from _files(bases, node.module)
            for name in names:
                yield from _files(bases, prefix + name)


def _package_folder(file: Path, level: int) -> tuple[Path, ...]:
    """The folder a relative import of `level` dots in `file` starts from (none above the
    file system's root)."""
    folder = file.parent
    for _ in range(level - 1):
        if folder.parent == folder:
            return ()
        folder = folder.parent
    return (folder,)


def _files(bases: tuple[Path, ...], dotted: str) -> Iterator[Path]:
    """The files `import dotted` runs from the first of `bases` that has it: each package's
    `__init__.py` on the way, and the module."""
    parts = dotted.split(".")
    for base in bases:
        files = [module_file(base, ".".join(parts[: i + 1])) for i in range(len(parts))]
        if files[-1] is not None:
            yield from (f for f in files if f is not None)
            return
