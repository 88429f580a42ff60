"""Settings: `[tool.gptlint]` in the nearest pyproject.toml, with command-line values on top."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from gptlint.gpus import DEFAULT_GPU, PROFILES
from gptlint.units import parse_memory

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FIX_STRATEGIES = ("keep-width", "keep-heads")
_CODE = re.compile(r"^(ALL|GPT\d{0,3})$")


class SettingsError(Exception):
    """Settings that cannot be used; the message names the file and line where known."""


@dataclass(frozen=True)
class Settings:
    """Everything that changes what gptlint reports. Paths are absolute."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    gpu: str = DEFAULT_GPU
    memory_budget: int | None = None
    world_size: int = 1
    defaults: Path | None = None
    model: Path | None = None
    fix_strategy: str = "keep-width"
    exclude: tuple[str, ...] = ()
    root: Path | None = field(default=None, compare=False)

    def merged(self, overrides: dict[str, Any]) -> Settings:
        """These settings with the non-None `overrides` (from the command line) on top."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_KEYS = {
    "select": "select",
    "ignore": "ignore",
    "gpu": "gpu",
    "memory-budget": "memory_budget",
    "world-size": "world_size",
    "defaults": "defaults",
    "model": "model",
    "fix-strategy": "fix_strategy",
    "exclude": "exclude",
}


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.gptlint]` table."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate_dir in (directory, *directory.parents):
        candidate = candidate_dir / "pyproject.toml"
        if candidate.is_file() and _gptlint_table(candidate) is not None:
            return candidate
    return None


def load_settings(start: Path) -> Settings:
    """Settings from the nearest pyproject.toml with `[tool.gptlint]`, or the defaults."""
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Settings()
    return _load_pyproject(pyproject, _version(pyproject))


def _version(path: Path) -> tuple[int, int]:
    """What tells one state of a file from the next: the caches below key on it."""
    info = path.stat()
    return info.st_mtime_ns, info.st_size


def _gptlint_table(path: Path) -> tuple[str, Any] | None:
    """The text of `path` and its `tool.gptlint` value, None if it has none."""
    return _read_table(path, _version(path))


@lru_cache(maxsize=64)
def _read_table(path: Path, version: tuple[int, int]) -> tuple[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    if "gptlint" not in text:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise SettingsError(f"{path}:{line}: invalid TOML: {str(exc).split(' (at')[0]}") from None
    tool = data.get("tool")
    if not isinstance(tool, dict) or "gptlint" not in tool:
        return None
    return text, tool["gptlint"]


@lru_cache(maxsize=64)
def _load_pyproject(path: Path, version: tuple[int, int]) -> Settings:
    """The settings in `path` (cached until the file changes)."""
    text, table = _read_table(path, version)
    if not isinstance(table, dict):
        raise SettingsError(f"{path}:{_key_line(text, 'gptlint')}: [tool.gptlint] must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{path}:{_key_line(text, key)}"
        if key not in _KEYS:
            known = ", ".join(_KEYS)
            raise SettingsError(f"{where}: unknown key {key!r} in [tool.gptlint] (known: {known})")
        try:
            values[_KEYS[key]] = convert(_KEYS[key], value, path.parent)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{where}: {key}: {exc}") from None
    return Settings(root=path.parent, **values)


def convert(name: str, value: Any, base: Path) -> Any:
    """Check and convert one setting's value; raises ValueError/TypeError with the reason."""
    if name in ("select", "ignore", "exclude"):
        if isinstance(value, str):
            value = [v for v in re.split(r"[,\s]+", value) if v]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError("must be a list of strings")
        if name != "exclude":
            for code in value:
                _check_code(code)
            return tuple(v.upper() for v in value)
        return tuple(value)
    if name == "gpu":
        if not isinstance(value, str) or value.lower() not in PROFILES:
            raise ValueError(f"unknown GPU profile {value!r} (known: {', '.join(PROFILES)})")
        return value.lower()
    if name == "memory_budget":
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise TypeError("must be a size such as '12GB' or '10500MiB'")
        return parse_memory(value)
    if name == "world_size":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError("must be a positive integer")
        return value
    if name in ("defaults", "model"):
        if not isinstance(value, str):
            raise TypeError("must be a path")
        path = (base / value).resolve()
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path
    if name == "fix_strategy":
        if value not in FIX_STRATEGIES:
            raise ValueError(f"must be one of {', '.join(FIX_STRATEGIES)}, not {value!r}")
        return value
    raise ValueError(f"unknown setting {name}")


def _check_code(code: str) -> None:
    """ValueError unless `code` is ALL or a prefix of at least one rule's code."""
    from gptlint.rules import ALL_RULES

    upper = code.upper()
    if not _CODE.match(upper):
        raise ValueError(f"{code!r} is not a rule code or prefix (e.g. GPT101, GPT1)")
    if upper != "ALL" and not any(rule.code.startswith(upper) for rule in ALL_RULES):
        raise ValueError(f"{code!r} matches no rule (see gptlint --list-rules)")


def _key_line(text: str, key: str) -> int:
    """The line of `key = …` inside [tool.gptlint], or of the table itself for key 'gptlint'
    (best effort; 1 if not found)."""
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = bool(re.match(r"\[\s*tool\s*\.\s*gptlint\s*\]", stripped))
            if key == "gptlint" and in_table:
                return number
        else:
            pattern = r"(tool\s*\.\s*)?gptlint" if key == "gptlint" else re.escape(key)
            if (in_table or key == "gptlint") and re.match(rf"[\"']?{pattern}[\"']?\s*=", stripped):
                return number
    return 1


def _line_from_message(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else 1


def schema_for(config_path: Path, settings: Settings | None):  # -> Schema
    """The schema for a config: the `defaults` train.py, a train.py found beside the config
    folder, or nanoGPT's defaults."""
    from gptlint.schema import NANOGPT_SCHEMA

    train_py = settings.defaults if settings and settings.defaults else find_train_py(config_path)
    return NANOGPT_SCHEMA if train_py is None else _schema_from(train_py)


@lru_cache(maxsize=32)
def _schema_from(train_py: Path):
    from gptlint.schema import schema_from_train_py

    return schema_from_train_py(train_py)


def find_train_py(config_path: Path) -> Path | None:
    """A nanoGPT-style train.py (one that runs configurator.py) in the config's folder or above,
    up to the project root (a folder with pyproject.toml or .git)."""
    return _find_train_py(config_path.parent.absolute())


@lru_cache(maxsize=256)
def _find_train_py(folder: Path) -> Path | None:
    directory = folder.resolve()
    for candidate_dir in (directory, *directory.parents):
        candidate = candidate_dir / "train.py"
        if candidate.is_file():
            try:
                if "configurator" in candidate.read_text(encoding="utf-8", errors="replace"):
                    return candidate
            except OSError:
                pass
        if (candidate_dir / "pyproject.toml").exists() or (candidate_dir / ".git").exists():
            return None
    return None
