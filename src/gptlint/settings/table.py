"""Settings: what changes what gptlint reports, and the one table that describes each of them.

Every setting is a row of `SETTINGS`: its `Settings` field, its `[tool.gptlint]` key, its
command-line flag and help, and how a raw value is checked and converted. The command line
(`gptlint.command.cli`, `gptlint.command.invocation`), the pyproject.toml loader
(`gptlint.settings.pyproject`) and the pytest plugin all read this table. A rule code's form is
checked by its row; whether it names a rule, against the codes the caller passes
(`check_known_codes`: the rule registry is the lint layer's, `gptlint.lint.rules.RULE_CODES`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gptlint.facts.gpus import DEFAULT_GPU, PROFILES, GpuProfile, get_profile, with_context
from gptlint.facts.units import parse_memory

FIX_STRATEGIES = ("keep-width", "keep-heads")
_CODE = re.compile(r"^(ALL|GPT\d{0,3})$")


class SettingsError(Exception):
    """Settings that cannot be used; the message names the file and line where known."""


@dataclass(frozen=True)
class Settings:
    """Everything that changes what gptlint reports, and `jobs`, which changes only how fast a
    run goes (one value per run: `gptlint.command.invocation` takes it from the command line, else
    from the pyproject.toml nearest the working directory; like `root`, it is left out of
    comparisons). Paths are absolute."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    gpu: str = DEFAULT_GPU
    memory_budget: int | None = None
    cuda_context: int | None = None
    world_size: int | None = None  # None: not given (a `--nproc_per_node=N` comment, else 1)
    defaults: Path | None = None
    model: Path | None = None
    fix_strategy: str = "keep-width"
    exclude: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    root: Path | None = field(default=None, compare=False)  # where `exclude` starts (None: cwd)
    jobs: int | None = field(default=None, compare=False)  # how fast, not what: see SETTINGS

    def profile(self) -> GpuProfile:
        """The target GPU's profile, with the `cuda-context` setting's figure where one is set."""
        return with_context(get_profile(self.gpu), self.cuda_context, "the cuda-context setting")

    def budget(self) -> int:
        """Bytes a training step may use: the `memory-budget` setting, else the GPU's total."""
        if self.memory_budget is not None:
            return self.memory_budget
        return get_profile(self.gpu).usable_bytes

    def merged(self, overrides: dict[str, Any]) -> Settings:
        """These settings with the non-None `overrides` (from the command line) on top; config
        overrides (`--set`) come after the file's `set` table, so the command line wins, and
        `--exclude` patterns start at the working folder, not at the pyproject.toml's."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if "overrides" in values:
            values["overrides"] = self.overrides + tuple(values["overrides"])
        if "exclude" in values:
            values["root"] = None
        return replace(self, **values)


RuleCodes = tuple[str, ...]
"""The codes of every rule (`gptlint.lint.rules.RULE_CODES`), which rule-code settings name."""


def check_known_codes(codes: tuple[str, ...], rule_codes: RuleCodes) -> None:
    """ValueError unless each of `codes` (upper case, of the right form) is ALL or a prefix of
    at least one of `rule_codes`."""
    for code in codes:
        if code != "ALL" and not any(rule.startswith(code) for rule in rule_codes):
            raise ValueError(f"{code!r} matches no rule (see gptlint --list-rules)")


Converter = Callable[[Any, Path], Any]
"""Checks a raw value (from TOML or the command line) and converts it; `Path` is the folder
relative paths start from. Raises ValueError or TypeError with the reason."""


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError("must be a list of strings")
    return tuple(value)


def _codes(value: Any, base: Path) -> tuple[str, ...]:
    codes = _strings(value)
    for code in codes:
        if not _CODE.match(code.upper()):
            raise ValueError(f"{code!r} is not a rule code or prefix (e.g. GPT101, GPT1)")
    return tuple(code.upper() for code in codes)


def _globs(value: Any, base: Path) -> tuple[str, ...]:
    return _strings(value)


def _gpu(value: Any, base: Path) -> str:
    if not isinstance(value, str) or value.lower() not in PROFILES:
        raise ValueError(f"unknown GPU profile {value!r} (known: {', '.join(PROFILES)})")
    return value.lower()


def _memory(value: Any, base: Path) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError("must be a size such as '12GB' or '10500MiB'")
    return parse_memory(value)


def _positive_int(value: Any, base: Path) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("must be a positive integer")
    return value


def _file(value: Any, base: Path) -> Path:
    if not isinstance(value, str):
        raise TypeError("must be a path")
    path = (base / value).resolve()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _overrides(value: Any, base: Path) -> tuple[str, ...]:
    """`KEY=VALUE` items as nanoGPT's configurator reads them: a `set` table from pyproject.toml
    (`{batch_size = 8, dtype = "float16"}`) or `--set` values from the command line."""
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(item, bool | int | float | str):
                raise TypeError(f"{key}: must be a number, boolean or string")
            items.append(f"{key}={item!r}")
        return tuple(items)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError("must be a table of config keys and values")
    for item in value:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{item!r} is not KEY=VALUE")
    return tuple(value)


def _fix_strategy(value: Any, base: Path) -> str:
    if value not in FIX_STRATEGIES:
        raise ValueError(f"must be one of {', '.join(FIX_STRATEGIES)}, not {value!r}")
    return value


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its `Settings` field, where users write it, and how its value is read."""

    name: str
    pyproject_key: str
    cli_flag: str
    help: str
    metavar: str
    convert: Converter
    repeatable: bool = False
    short_flag: str | None = None

    @property
    def selects_rules(self) -> bool:
        """Whether the value is rule codes, which the loaders check against the rules'
        (`check_known_codes`)."""
        return self.convert is _codes


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "select",
        "select",
        "--select",
        "comma-separated codes or prefixes to enable (ALL for all)",
        "CODES",
        _codes,
    ),
    SettingSpec(
        "ignore",
        "ignore",
        "--ignore",
        "comma-separated codes or prefixes to disable",
        "CODES",
        _codes,
    ),
    SettingSpec("gpu", "gpu", "--gpu", f"target GPU profile (default {DEFAULT_GPU})", "NAME", _gpu),
    SettingSpec(
        "memory_budget",
        "memory-budget",
        "--memory-budget",
        "memory budget, e.g. 11GB (default: the GPU's)",
        "SIZE",
        _memory,
    ),
    SettingSpec(
        "cuda_context",
        "cuda-context",
        "--cuda-context",
        "memory a process uses outside PyTorch's allocator, e.g. 863MiB (default: the GPU's)",
        "SIZE",
        _memory,
    ),
    SettingSpec(
        "world_size",
        "world-size",
        "--world-size",
        "number of training processes (DDP)",
        "N",
        _positive_int,
    ),
    SettingSpec(
        "defaults",
        "defaults",
        "--defaults",
        "the fork's train.py to read keys and defaults from",
        "TRAIN_PY",
        _file,
    ),
    SettingSpec("model", "model", "--model", "the fork's model.py", "MODEL_PY", _file),
    SettingSpec(
        "fix_strategy",
        "fix-strategy",
        "--fix-strategy",
        "GPT101 fix: keep-width (default) or keep-heads",
        "STRATEGY",
        _fix_strategy,
    ),
    SettingSpec(
        "exclude",
        "exclude",
        "--exclude",
        "comma-separated glob patterns to skip",
        "GLOBS",
        _globs,
    ),
    SettingSpec(
        "overrides",
        "set",
        "--set",
        "give a config key a value, as nanoGPT's --KEY=VALUE does, or a run script's shell"
        " variable one it leaves unknown (repeatable)",
        "KEY=VALUE",
        _overrides,
        repeatable=True,
    ),
    SettingSpec(
        "jobs",
        "jobs",
        "--jobs",
        "lint in N worker processes (default: one per CPU); changes only how fast",
        "N",
        _positive_int,
        short_flag="-j",
    ),
)
SETTINGS_BY_NAME: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS}


def check_setting(name: str, value: Any, base: Path | None = None) -> Any:
    """`value` for the setting `name` (a `Settings` field), checked and converted by its row of
    the table; relative paths start at `base` (default: the working directory). Raises
    ValueError or TypeError with the reason, without the setting's name. Rule codes are
    checked for their form only (see `check_known_codes`)."""
    return SETTINGS_BY_NAME[name].convert(value, Path.cwd() if base is None else base)
