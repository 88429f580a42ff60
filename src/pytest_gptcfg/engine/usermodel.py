"""A project's own model.py: its `GPT` and `GPTConfig`, built the way train.py builds them."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from gptlint.runmodel.trainingrun import ModelShape
from pytest_gptcfg.engine.modelsources import imported_files


class UserModelError(Exception):
    """The model.py cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ModelFactory:
    """Builds `GPT(GPTConfig(**model_args))` of a project's model.py (`path`) for a shape.

    `digest` names the code it runs (`_digest`), which the model's compiled plans depend on.
    """

    path: Path
    gpt: Callable[..., Any]
    gpt_config: Callable[..., Any]
    digest: str

    def __call__(self, shape: ModelShape) -> Any:
        try:
            return self.gpt(self._config(shape))
        except SystemExit as exc:  # pytest would end the test with its traceback
            raise UserModelError(
                f"{self.path}: building its GPT called sys.exit({exc.code!r})"
            ) from None

    def _config(self, shape: ModelShape) -> Any:
        """`GPTConfig(**model_args)`; what it raises (plain Python, no tensor: train.py's call
        raises it too) named at the class, whose generated `__init__` has no line of its own."""
        try:
            return self.gpt_config(**shape.gptconfig_kwargs())
        except Exception as exc:
            where = _class_line(self.gpt_config)
            raise UserModelError(
                f"{self.path}{where}: its GPTConfig(**model_args) raised"
                f" {type(exc).__name__}: {exc}, as train.py's would"
            ) from None


def _class_line(cls: Any) -> str:
    """`:LINE` of `class ...` (past its decorators) in its file, or "" where not found."""
    try:
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return ""
    offset = next((i for i, line in enumerate(lines) if line.lstrip().startswith("class ")), 0)
    return f":{start + offset}"


def model_factory(path: Path, run_from: Path | None = None) -> ModelFactory:
    """The `ModelFactory` of the model.py at `path`, imported by a training script that runs
    from the folder `run_from` (default: the model's own).

    The module is imported once (it is the project's own code, run on purpose), with
    `run_from` and its own folder on sys.path, so that its imports work as in the run
    (`from models.layers import Block` from the project's root) and sibling imports too; a
    model in a package under `run_from` (`models/gpt.py`) is a module of that package, so that
    its relative imports (`from .layers import Block`) work as well.
    """
    folders = tuple(dict.fromkeys(f.resolve() for f in (run_from or path.parent, path.parent)))
    module = _load(path.resolve(), folders)
    for name in ("GPT", "GPTConfig"):
        if not callable(getattr(module, name, None)):
            raise UserModelError(f"{path}: defines no {name} (nanoGPT's model.py has both)")
    return ModelFactory(path, module.GPT, module.GPTConfig, _digest(path.resolve(), folders))


def _digest(path: Path, folders: tuple[Path, ...]) -> str:
    """What the compiled plan of this model depends on: the bytes of model.py, of the
    project's files its import statements reach, in packages however deep
    (`modelsources.imported_files`), and of every module loaded from `folders` (an import
    those statements do not name: `importlib.import_module`)."""
    files = imported_files(path, folders)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not (isinstance(file, str) and os.path.isabs(file) and file.endswith(".py")):
            continue
        if Path(file).parent in folders:
            files.add(Path(file))
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(file.name.encode() + b"\0")
        with contextlib.suppress(OSError):  # a module whose file has gone since
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _package(path: Path, run_from: Path) -> str | None:
    """The package the module at `path` is in, as a run from `run_from` imports it
    (`models/gpt.py` is in `models`); None for a module of `run_from` itself or outside it."""
    try:
        parts = path.parent.relative_to(run_from).parts
    except ValueError:
        return None
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None


@lru_cache(maxsize=8)
def _load(path: Path, folders: tuple[Path, ...]) -> ModuleType:
    """The module at `path`, imported with `folders` first on sys.path (the first: the folder
    the run starts from), under a name of its own in its package (`_package`)."""
    name = "_gptcfg_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    package = _package(path, folders[0])
    name = name if package is None else f"{package}.{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserModelError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path[:0] = [str(folder) for folder in folders]
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:  # sys.exit() at import: the test run goes on, the check is off
        del sys.modules[name]
        raise UserModelError(f"{path}: importing it called sys.exit({exc.code!r})") from None
    except Exception as exc:
        del sys.modules[name]
        raise UserModelError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    finally:
        for folder in folders:
            sys.path.remove(str(folder))
    return module
