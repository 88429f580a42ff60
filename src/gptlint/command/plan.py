"""Which files a run lints and the settings each gets: the settings of each folder (its
pyproject.toml, the command line's values on top), the files each named path holds, and the
list of files, each with its settings, that worker processes are handed."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gptlint.lint.context import model_defaults
from gptlint.lint.diagnostics import escape_path
from gptlint.lint.discover import Target, excluded, selects, walk
from gptlint.lint.rules import RULE_CODES
from gptlint.lint.scriptlint import SCRIPT_SUFFIX, is_run_script
from gptlint.nanogpt.schema import NANOGPT_SCHEMA, SchemaError, schema_for
from gptlint.settings.pyproject import convert, load_settings
from gptlint.settings.table import SETTINGS, Settings, SettingsError


def cli_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, checked and converted, by name."""
    values: dict[str, Any] = {}
    for spec in SETTINGS:
        raw = getattr(args, spec.name)
        if raw is None:
            continue
        try:
            values[spec.name] = convert(spec, raw, Path.cwd(), RULE_CODES)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{spec.cli_flag}: {exc}") from None
    return values


class FolderSettings:
    """The settings of each folder of a run, looked up once: `overrides` (the command line's,
    `cli_settings`) on top of its pyproject.toml's."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._settings: dict[Path, Settings] = {}

    def settings_for(self, folder: Path) -> Settings:
        """`[tool.gptlint]` from the nearest pyproject.toml above `folder`, CLI values on top."""
        if folder not in self._settings:
            self._settings[folder] = load_settings(folder, RULE_CODES).merged(self.overrides)
        return self._settings[folder]


FOUND_SUFFIXES = (".py", SCRIPT_SUFFIX)
"""What a folder's walk finds: configs, and run scripts (linted where they run nanochat)."""


def find_files(
    folders: FolderSettings,
    name: str,
    folder_error: Callable[[OSError], None],
    process: Callable[[Target], bool],
    error: Callable[[str], None],
) -> None:
    """`process` the file a named path names, or each `.py` and `.sh` file under the folder it
    names, less what the `exclude` setting leaves out (`process` says whether it was linted);
    `error` for a path that names none, `folder_error` for a folder that cannot be listed."""
    shown = escape_path(name)
    if not name:
        error("'': an empty path names no file or folder")
        return
    path = Path(name)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            error(f"{shown}: no such file or directory")
        else:
            error(f"{shown}: {exc.strerror or exc}")
        return
    if stat.S_ISDIR(mode):
        settings = folders.settings_for(path)
        found = list(walk(path, settings.exclude, settings.root, folder_error, FOUND_SUFFIXES))
        if not sum(process(Target(p, False)) for p in found):
            error(f"{shown}: no config files found{_all_excluded(path, found, settings)}")
        return
    if not stat.S_ISREG(mode):
        error(f"{shown}: not a regular file or folder, skipped")
        return
    settings = folders.settings_for(path.parent)
    if not excluded(path, settings.exclude, settings.root):
        process(Target(path, True))


def _all_excluded(folder: Path, found: list[Path], settings: Settings) -> str:
    """Where the `exclude` setting left out every `.py` file of `folder`, that said."""
    if found or not settings.exclude or not any(walk(folder, (), settings.root, _ignore)):
        return ""
    return f" (every .py file here matches the exclude setting: {list(settings.exclude)})"


def worker_tasks(
    folders: FolderSettings, paths: list[str], fixing: bool
) -> list[tuple[Target, Settings]]:
    """The files the run lints, each once, with their settings: found as the run finds them
    (`find_files`), reporting nothing (a file whose settings are broken, or that `--fix` reaches by
    a second name, is left to the run itself). The train.py and model.py each folder's configs
    use are read here, once: forked workers inherit them. None to hand to workers where
    `--fix` may rewrite one of those (the `defaults` file is itself a config of the run): the
    configs after it must see it fixed, as one process has them."""
    found: dict[str, Target] = {}

    def collect(target: Target) -> bool:
        found.setdefault(os.path.abspath(target.path), target)
        return True

    for name in paths:
        try:
            find_files(folders, name, _ignore, collect, _ignore)
        except (SettingsError, SchemaError):
            continue
    tasks: list[tuple[Target, Settings]] = []
    read: set[tuple[Path, Settings]] = set()
    files: dict[str, tuple[Target, Settings]] = {}
    schemas: set[str] = set()
    for target in found.values():
        try:
            settings = folders.settings_for(target.path.parent)
        except SettingsError:
            continue
        if fixing:  # a file by a second name (a link) is read after the first's fix
            file = os.path.realpath(target.path)
            if file in files:
                continue
            files[file] = (target, settings)
        tasks.append((target, settings))
        if (target.path.parent, settings) not in read and not is_run_script(target.path):
            read.add((target.path.parent, settings))
            schemas |= _read_schema(target.path, settings)
    for file in schemas & files.keys():  # a train.py is code, never fixed; a defaults file may be
        target, settings = files[file]
        if selects(target.path, None if target.explicit else target.path.parent, settings):
            return []
    return tasks


def _read_schema(config: Path, settings: Settings) -> set[str]:
    """Read (into their caches) the train.py and model.py that `config`'s lint will use; their
    real paths."""
    read = {os.path.realpath(p) for p in (settings.defaults, settings.model) if p is not None}
    with contextlib.suppress(Exception):  # the file's own lint reports it, in its place
        schema = schema_for(config, settings.defaults, settings.profile(), model=settings.model)
        model_defaults(schema, settings)
        if schema is not NANOGPT_SCHEMA:
            read.add(os.path.realpath(schema.origin))
        if schema.model_py is not None:
            read.add(os.path.realpath(schema.model_py))
    return read


def _ignore(_: object) -> None:
    pass
