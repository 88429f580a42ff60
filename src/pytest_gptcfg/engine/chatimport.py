"""A nanochat checkout's own code, imported for one simulation and then forgotten.

`checkout_modules(root, dtype)` imports the checkout's `nanochat.gpt` (which imports its
`common`, `optim` and `flash_attention`) with the checkout first on `sys.path`, `NANOCHAT_DTYPE`
set to the step's dtype (nanochat reads it once, at import), CUDA hidden (`flash_attention`
probes for FlashAttention-3 and the hub it comes from only where CUDA is available: the
simulation runs on the CPU, and its stand-ins decide which kernel the target GPU gets) and
`torch.compile` deferred (`torchapi.deferred_compile`: its decorators keep their functions,
which the simulation runs eagerly anyway, without loading Dynamo). On the way out `sys.path`,
the environment, the root logger and `sys.modules` are put back: every module loaded from the
checkout is dropped and a `nanochat` package imported before (the user's own) returns, so two
checkouts in one pytest session never mix.

What stops the import is a `ChatModelError` naming the file and line: a third-party module the
checkout imports but this environment lacks, a module of its own it does not have, a syntax
error, anything its code raises.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from unittest import mock

import torch

from pytest_gptcfg.engine.torchapi import deferred_compile

PACKAGE = "nanochat"
"""The checkout's package, imported by name as base_train does (`from nanochat.gpt import`)."""


class ChatModelError(Exception):
    """The checkout's code could not be imported or built; the text names the file (and line
    where known) and what to do."""


@dataclass(frozen=True)
class ChatModules:
    """The checkout's modules the simulation reads or patches (None where it has none)."""

    root: Path
    gpt: ModuleType
    optim: ModuleType | None
    flash_attention: ModuleType | None

    @property
    def loaded(self) -> list[ModuleType]:
        """Every module of the checkout's package now imported."""
        return [m for name, m in sys.modules.items() if _in_package(name)]


@contextlib.contextmanager
def checkout_modules(root: Path, dtype: str) -> Iterator[ChatModules]:
    """The checkout at `root` imported with `NANOCHAT_DTYPE=dtype`, for the `with` block."""
    root = root.resolve()
    if not (root / PACKAGE / "gpt.py").is_file():
        raise ChatModelError(f"{root}: no {PACKAGE}/gpt.py (is it a nanochat checkout?)")
    saved_path = list(sys.path)
    saved_modules = {name: m for name, m in sys.modules.items() if _in_package(name)}
    saved_dtype = os.environ.get("NANOCHAT_DTYPE")
    saved_bytecode = sys.dont_write_bytecode
    logger = logging.getLogger()
    saved_logging = (list(logger.handlers), logger.level)
    for name in saved_modules:
        del sys.modules[name]
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    os.environ["NANOCHAT_DTYPE"] = dtype
    sys.dont_write_bytecode = True  # leave no __pycache__ in the user's checkout
    importlib.invalidate_caches()
    try:
        yield _import(root)
    finally:
        for name in set(sys.modules) - before:
            if _in_package(name) or _from(sys.modules[name], root):
                del sys.modules[name]
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path
        if saved_dtype is None:
            os.environ.pop("NANOCHAT_DTYPE", None)
        else:
            os.environ["NANOCHAT_DTYPE"] = saved_dtype
        sys.dont_write_bytecode = saved_bytecode
        logger.handlers[:], logger.level = saved_logging


def _import(root: Path) -> ChatModules:
    try:
        with (
            mock.patch.object(torch.cuda, "is_available", lambda: False),
            mock.patch.object(torch, "compile", deferred_compile),
        ):
            gpt = importlib.import_module(f"{PACKAGE}.gpt")
    except ModuleNotFoundError as error:
        raise ChatModelError(_missing(error, root)) from None
    except SyntaxError as error:
        where = _relative(Path(error.filename or ""), root)
        raise ChatModelError(f"{where}:{error.lineno}: a syntax error ({error.msg})") from None
    except SystemExit as error:
        where = checkout_line(error.__traceback__, root)
        raise ChatModelError(f"{where}: importing it called sys.exit({error.code!r})") from None
    except Exception as error:
        where = checkout_line(error.__traceback__, root)
        what = f"{type(error).__name__}: {error}".strip().splitlines()[0][:200]
        raise ChatModelError(f"{where}: importing it raised {what}") from None
    for name in ("GPT", "GPTConfig"):
        if not callable(getattr(gpt, name, None)):
            raise ChatModelError(f"{PACKAGE}/gpt.py defines no {name} (nanochat's gpt.py has it)")
    for method in ("init_weights", "setup_optimizer"):
        if not callable(getattr(gpt.GPT, method, None)):
            raise ChatModelError(
                f"{PACKAGE}/gpt.py: GPT has no {method}() (base_train calls it to build the step)"
            )
    return ChatModules(
        root,
        gpt,
        sys.modules.get(f"{PACKAGE}.optim"),
        sys.modules.get(f"{PACKAGE}.flash_attention"),
    )


def _missing(error: ModuleNotFoundError, root: Path) -> str:
    where = checkout_line(error.__traceback__, root)
    name = error.name or str(error)
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        return f"{where} imports {name}, which the checkout at {root} does not have"
    return (
        f"{where} imports {name}, which is not installed in this environment: "
        "install the checkout's requirements"
    )


def checkout_line(tb: TracebackType | None, root: Path) -> str:
    """`nanochat/common.py:11`: the innermost frame of the checkout's code in `tb`."""
    found = f"{PACKAGE}/gpt.py"
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename)
        if _under(path, root):
            found = f"{_relative(path, root)}:{frame.lineno}"
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return str(path)


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _from(module: object, root: Path) -> bool:
    """Whether `module` was loaded from a file in the checkout."""
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and _under(Path(file), root)
