"""Which files to lint: named files, and the `.py` files under named folders minus exclusions."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gptlint.lint.linter import looks_like_config
from gptlint.nanogpt.configfile import parse_config
from gptlint.settings.table import Settings
from gptlint.text.decode import SourceError, decode_source
from gptlint.text.files import read_regular

DEFAULT_EXCLUDE = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "__pycache__",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".eggs",
)


@dataclass(frozen=True)
class Target:
    """A file to lint; `explicit` when the user named it (then it is linted even if it does
    not look like a config)."""

    path: Path
    explicit: bool


def excluded(path: Path, patterns: tuple[str, ...], root: Path | None) -> bool:
    """Whether `path` matches an exclude pattern, by the name of one of its folders or its
    own, or by its path, taken relative to `root` (the folder of the pyproject.toml that set
    the patterns; the current folder for `--exclude`)."""
    if not patterns:
        return False
    try:
        relative = path.resolve().relative_to(root or Path.cwd())
    except ValueError:  # outside the project: match what the user typed
        relative = path
    names = relative.parts
    text = relative.as_posix()
    return any(fnmatch.fnmatch(name, p) for name in names for p in patterns) or any(
        fnmatch.fnmatch(text, p) or text.startswith(p.rstrip("/") + "/") for p in patterns
    )


def walk(
    folder: Path,
    patterns: tuple[str, ...],
    root: Path | None,
    on_error: Callable[[OSError], None] | None = None,
    suffixes: tuple[str, ...] = (".py",),
) -> Iterator[Path]:
    """The files under `folder` whose names end in one of `suffixes` (`.py`; the command adds
    run scripts, `.sh`), sorted, skipping default and configured exclusions. A folder that
    cannot be listed goes to `on_error` (the walk goes on with the others)."""
    for current, dirs, files in os.walk(folder, onerror=on_error):
        base = Path(current)
        dirs[:] = sorted(
            d for d in dirs if d not in DEFAULT_EXCLUDE and not excluded(base / d, patterns, root)
        )
        for name in sorted(files):
            path = base / name
            if name.endswith(suffixes) and not excluded(path, patterns, root):
                yield path


def selects(path: Path, folder: Path | None, settings: Settings) -> bool:
    """Whether gptlint lints the `.py` file `path`: one the user named (`folder` None) unless
    excluded; one under `folder` if `walk` finds it and it looks like a config
    (`lint.looks_like_config`; a file that cannot be read or parsed counts, for its GPT000).
    The pytest plugin collects exactly these files as configs."""
    if excluded(path, settings.exclude, settings.root):
        return False
    if folder is None:
        return True
    inside = path.relative_to(folder).parts[:-1]
    if path.suffix != ".py" or any(part in DEFAULT_EXCLUDE for part in inside):
        return False
    try:
        file = parse_config(decode_source(str(path), read_regular(path)))
    except (OSError, SourceError):
        return True
    return looks_like_config(file, settings)
