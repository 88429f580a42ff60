"""The plugin's options: command line, ini twins, `[tool.gptlint]`, validated once (no torch)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from gptlint.facts.gpus import PROFILES
from gptlint.facts.units import GIB
from gptlint.settings.table import check_setting

MODES = ("auto", "cuda", "simulate")
COMPILE_MODES = ("auto", "on", "off")
TORCH_EXTRA = "pip install 'gptlint[torch]'"
SUFFIXES = (".py", ".sh")
"""What `--gpt-configs` checks: configs, and nanochat run scripts (gptlint's
`command.plan.FOUND_SUFFIXES`, named here so that loading the plugin loads no linter)."""
IniType = Literal["string", "paths", "linelist"]
"""The ini types of the plugin's options (pytest's `addini` names)."""


def add_options(parser: pytest.Parser) -> None:
    """Register the `gptcfg` option group; every option has an ini twin."""
    group = parser.getgroup("gptcfg", "nanoGPT config checks (pytest-gptcfg)")
    gpus = ", ".join(PROFILES)

    def option(name: str, ini_type: IniType, text: str, **kwargs: object) -> None:
        dest = name.replace("-", "_")
        group.addoption(f"--{name}", dest=dest, help=f"{text} (ini: {dest})", **kwargs)
        parser.addini(dest, text, type=ini_type)

    option(
        "gpt-configs",
        "paths",
        "a config file, a nanochat run script (.sh) or a folder of them to check (repeatable)",
        action="append",
        metavar="PATH",
        default=None,
    )
    option(
        "gpt-gpu",
        "string",
        f"GPU profile to check against ({gpus}); default: [tool.gptlint] gpu, else rtx4070",
        metavar="NAME",
    )
    option(
        "gpt-memory-budget",
        "string",
        "memory budget, e.g. 11GB; default: "
        "[tool.gptlint] memory-budget, else the GPU's total memory",
        metavar="SIZE",
    )
    option(
        "gpt-world-size",
        "string",
        "number of training processes (DDP); default: [tool.gptlint] world-size, else a "
        "`--nproc_per_node=N` comment in the config, else 1",
        metavar="N",
    )
    option(
        "gpt-cuda-context",
        "string",
        "memory a process uses outside PyTorch's allocator, e.g. 863MiB, for the estimate and "
        "the simulation; default: [tool.gptlint] cuda-context, else the GPU profile's",
        metavar="SIZE",
    )
    option(
        "gpt-mode",
        "string",
        "auto: measure on CUDA when available, else simulate on fake tensors; cuda; simulate",
        choices=MODES,
    )
    option(
        "gpt-compile",
        "string",
        "torch.compile the model: auto (the config's `compile`), on, off",
        choices=COMPILE_MODES,
    )
    option(
        "gpt-model",
        "string",
        "a project's model.py whose GPT/GPTConfig to build instead "
        "of nanoGPT's; default: [tool.gptlint] model",
        metavar="PATH",
    )
    option(
        "gpt-set",
        "linelist",
        "override a config key as nanoGPT's --KEY=VALUE does (repeatable)",
        action="append",
        metavar="KEY=VALUE",
        default=None,
    )
    option(
        "gpt-snapshot",
        "string",
        "for configs that do not fit, write a memory_viz snapshot (.pickle) and a breakdown "
        "chart (.svg) into this folder",
        metavar="DIR",
    )
    option(
        "gpt-report",
        "string",
        "write per-config memory results to this JSON file (also finds the largest batch_size "
        "that fits for configs that pass, which costs extra simulations)",
        metavar="FILE",
    )


@dataclass(frozen=True)
class Options:
    """What the user asked for; None where `[tool.gptlint]` or a default decides per config."""

    configs: tuple[Path, ...]
    gpu: str | None
    memory_budget: int | None
    mode: str
    compile: str
    model: Path | None
    overrides: tuple[str, ...]
    report: Path | None
    snapshot: Path | None = None
    world_size: int | None = None
    cuda_context: int | None = None

    def header(self) -> str:
        """The line pytest prints in its session header."""
        gpu = self.gpu or "from [tool.gptlint], else rtx4070"
        budget = (
            "the GPU's memory"
            if self.memory_budget is None
            else f"{self.memory_budget / GIB:.2f} GiB"
        )
        return f"gptcfg: gpu {gpu}, budget {budget}, mode {self.mode}, compile {self.compile}"

    def given(self, path: Path) -> Path | None:
        """The `--gpt-configs` file or folder that names or holds the `.py` or `.sh` file
        `path`, else None; whether a file found in a folder is a config or a nanochat run
        script is gptlint's call (`items.is_config`, `scriptitems.is_run_script_for`)."""
        if path.suffix not in SUFFIXES or path.name in ("conftest.py", "__init__.py"):
            return None
        path = path.resolve()
        if path in self.configs:
            return path
        return next((folder for folder in self.configs if folder in path.parents), None)


OPTIONS_KEY = pytest.StashKey[Options]()
"""Where the plugin keeps the validated options on the pytest config."""


def read_options(config: pytest.Config) -> Options | None:
    """The validated options, or None when no configs were asked for.

    Raises `pytest.UsageError` with a one-line reason for anything unusable, including a
    missing torch (the memory check needs it).
    """
    configs = _configs(config)
    if not configs:
        return None
    if importlib.util.find_spec("torch") is None:
        raise pytest.UsageError(f"--gpt-configs needs PyTorch for the memory check: {TORCH_EXTRA}")
    gpu = _setting(config, "gpu")
    budget_bytes = _setting(config, "memory_budget")
    world = _setting(config, "world_size")
    context_bytes = _setting(config, "cuda_context")
    mode = _choice(config, "gpt_mode", MODES)
    compile_mode = _choice(config, "gpt_compile", COMPILE_MODES)
    overrides = tuple(config.getoption("gpt_set") or config.getini("gpt_set"))
    for item in overrides:
        if "=" not in item:
            raise pytest.UsageError(f"--gpt-set: {item!r} is not KEY=VALUE")
    return Options(
        configs=configs,
        gpu=gpu.lower() if gpu else None,
        memory_budget=budget_bytes,
        mode=mode,
        compile=compile_mode,
        model=_existing_file(config, "gpt_model"),
        overrides=overrides,
        report=_path(config, "gpt_report"),
        snapshot=_path(config, "gpt_snapshot"),
        world_size=world,
        cuda_context=context_bytes,
    )


def _configs(config: pytest.Config) -> tuple[Path, ...]:
    given = config.getoption("gpt_configs")
    if given:
        paths = [config.invocation_params.dir / p for p in given]
    else:
        paths = list(config.getini("gpt_configs"))
    for path in paths:
        if not path.exists():
            raise pytest.UsageError(f"--gpt-configs: no such file or folder: {path}")
        if not (path.is_file() or path.is_dir()):  # a FIFO, a device: never read
            raise pytest.UsageError(f"--gpt-configs: not a regular file or folder: {path}")
        if path.is_file() and path.suffix not in SUFFIXES:
            raise pytest.UsageError(f"--gpt-configs: not a Python config file: {path}")
    return tuple(dict.fromkeys(p.resolve() for p in paths))


def _value(config: pytest.Config, name: str) -> str | None:
    """The command-line value, else the ini value, else None."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name) or None
    return value


def _setting(config: pytest.Config, setting: str) -> Any:
    """`--gpt-SETTING` (or its ini key) checked as gptlint's own setting of that name; None
    where not given."""
    value = _value(config, f"gpt_{setting}")
    try:
        return check_setting(setting, value) if value is not None else None
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"--gpt-{setting.replace('_', '-')}: {exc}") from None


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    value = _value(config, name) or "auto"
    if value not in choices:
        flag = "--" + name.replace("_", "-")
        raise pytest.UsageError(f"{flag}: {value!r} is not one of {', '.join(choices)}")
    return value


def _path(config: pytest.Config, name: str) -> Path | None:
    """A path from the command line (relative to the cwd) or the ini file (relative to it)."""
    value = config.getoption(name)
    if value is not None:
        return config.invocation_params.dir / value
    value = config.getini(name)
    if not value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return base / value


def _existing_file(config: pytest.Config, name: str) -> Path | None:
    path = _path(config, name)
    if path is not None and not path.is_file():
        raise pytest.UsageError(f"--{name.replace('_', '-')}: no such file: {path}")
    return path.resolve() if path else None
