"""Reading settings: `[tool.gptlint]` in the nearest pyproject.toml, and the check of one raw
value (from that table or the command line) against its row of `gptlint.settings.table.SETTINGS`,
rule codes against the codes of the rules there are (the caller's `rule_codes`: the registry is
the lint layer's)."""

from __future__ import annotations

import re
import stat
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from gptlint.settings.table import (
    SETTINGS,
    RuleCodes,
    Settings,
    SettingsError,
    SettingSpec,
    check_known_codes,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_BY_KEY: dict[str, SettingSpec] = {spec.pyproject_key: spec for spec in SETTINGS}


def convert(spec: SettingSpec, value: Any, base: Path, rule_codes: RuleCodes) -> Any:
    """Check and convert one setting's raw value, relative paths from `base`, rule codes
    against `rule_codes` (those of every rule); raises ValueError/TypeError with the reason."""
    converted = spec.convert(value, base)
    if spec.selects_rules:
        check_known_codes(converted, rule_codes)
    return converted


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.gptlint]` table."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate_dir in (directory, *directory.parents):
        candidate = candidate_dir / "pyproject.toml"
        if _is_file(candidate) and _gptlint_table(candidate) is not None:
            return candidate
    return None


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; SettingsError where that cannot be known (its folder may not
    be searched: a pyproject.toml there would set this folder's settings)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_settings(start: Path, rule_codes: RuleCodes) -> Settings:
    """Settings from the nearest pyproject.toml with `[tool.gptlint]`, or the defaults; rule
    codes are checked against `rule_codes` (those of every rule)."""
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Settings()
    return _load_pyproject(pyproject, _version(pyproject), rule_codes)


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
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    if "gptlint" not in text:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise SettingsError(f"{path}:{line}: invalid TOML: {str(exc).split(' (at')[0]}") from None
    except RecursionError:  # tomllib recurses per nesting level of arrays and tables
        raise SettingsError(f"{path}: TOML nested too deeply to read") from None
    tool = data.get("tool")
    if not isinstance(tool, dict) or "gptlint" not in tool:
        return None
    return text, tool["gptlint"]


@lru_cache(maxsize=64)
def _load_pyproject(path: Path, version: tuple[int, int], rule_codes: RuleCodes) -> Settings:
    """The settings in `path` (cached until the file changes); the defaults where its
    `[tool.gptlint]` is gone (the file changed after `find_pyproject` found the table)."""
    read = _read_table(path, version)
    if read is None:
        return Settings()
    text, table = read
    if not isinstance(table, dict):
        raise SettingsError(f"{path}:{_key_line(text, 'gptlint')}: [tool.gptlint] must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{path}:{_key_line(text, key)}"
        spec = _BY_KEY.get(key)
        if spec is None:
            known = ", ".join(_BY_KEY)
            raise SettingsError(f"{where}: unknown key {key!r} in [tool.gptlint] (known: {known})")
        try:
            values[spec.name] = convert(spec, value, path.parent, rule_codes)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{where}: {key}: {exc}") from None
    return Settings(root=path.parent, **values)


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
