"""A nanochat checkout read statically (never imported): where it is, each entry script's
argparse flags (`add_argument` calls: names, type, default, action, choices), chat_sft.py's
fallbacks for what it inherits from the base checkpoint, and `GPTConfig`'s defaults in
`nanochat/gpt.py`. A fork's changed flags and defaults count; what cannot be read is an
`Unknown` naming its file and line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from gptlint.nanochat.literal import Unread, evaluate
from gptlint.nanochat.runscript import Unknown

MARKERS = ("scripts/base_train.py", "nanochat/gpt.py")
"""The files that make a folder a nanochat checkout."""

_TYPES = {"int": int, "float": float, "str": str}
INHERITED = ("max_seq_len", "device_batch_size", "total_batch_size")
"""What chat_sft takes from the base checkpoint when its flag is not given."""


@dataclass(frozen=True)
class Option:
    """One `parser.add_argument(...)` of an entry script."""

    flags: tuple[str, ...]
    dest: str
    type: type | Unknown | None
    """int, float or str; None where argparse keeps the string (no `type=`)."""
    default: object
    """The default's value, or an `Unknown` naming its line."""
    action: str | None
    choices: tuple[object, ...] | Unknown | None
    line: int

    @property
    def takes_value(self) -> bool:
        return self.action not in ("store_true", "store_false", "store_const", "count")


@dataclass(frozen=True)
class EntryScript:
    """An entry script's argparse options; `problems` says what could not be read."""

    name: str
    path: Path
    options: tuple[Option, ...]
    problems: tuple[str, ...] = ()

    def option(self, dest: str) -> Option | None:
        return next((o for o in self.options if o.dest == dest), None)


@dataclass(frozen=True)
class Checkout:
    """A nanochat checkout's folder and what its files say."""

    root: Path

    def entry(self, name: str) -> EntryScript | None:
        """`scripts/<name>.py`'s options, or None when the checkout has no such script."""
        return read_entry(name, self.root / "scripts" / f"{name}.py")

    def gptconfig(self) -> dict[str, object]:
        """`GPTConfig`'s field defaults in nanochat/gpt.py (an `Unknown` where unreadable)."""
        return read_dataclass_defaults(self.root / "nanochat" / "gpt.py", "GPTConfig")

    def dtype_names(self) -> tuple[str, ...] | Unknown:
        """The `NANOCHAT_DTYPE` values nanochat/common.py's `_DTYPE_MAP` knows."""
        return read_dict_keys(self.root / "nanochat" / "common.py", "_DTYPE_MAP")

    def sft_fallbacks(self) -> dict[str, object]:
        """chat_sft.py's `(name, fallback, source)` values for what it inherits."""
        return read_fallbacks(self.root / "scripts" / "chat_sft.py")


def find_checkout(script: Path) -> Checkout | None:
    """The checkout a run script belongs to: the nearest folder at or above it that holds
    `scripts/base_train.py` and `nanochat/gpt.py`."""
    start = script.resolve()
    for folder in (start, *start.parents) if start.is_dir() else start.parents:
        if all((folder / marker).is_file() for marker in MARKERS):
            return Checkout(folder)
    return None


def _parse(path: Path) -> ast.Module | str:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        return f"{path}: cannot be read ({exc.__class__.__name__})"


def read_entry(name: str, path: Path) -> EntryScript | None:
    """The `add_argument` calls of an entry script, wherever they are written."""
    if not path.is_file():
        return None
    tree = _parse(path)
    if isinstance(tree, str):
        return EntryScript(name, path, (), (tree,))
    options = []
    problems = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            option = _option(node, path)
            if isinstance(option, str):
                problems.append(option)
            elif option is not None:
                options.append(option)
    options.sort(key=lambda o: o.line)
    return EntryScript(name, path, tuple(options), tuple(problems))


def _option(call: ast.Call, path: Path) -> Option | str | None:
    where = f"{path.name}:{call.lineno}"
    flags = []
    for arg in call.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return f"{where}: an add_argument whose names are not literal strings"
        flags.append(arg.value)
    longs = [f for f in flags if f.startswith("--")]
    if not longs and not any(f.startswith("-") for f in flags):
        return None  # a positional argument: none of nanochat's entry points has one
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    dest = _text(keywords.get("dest")) or (longs or flags)[0].lstrip("-").replace("-", "_")
    action = _text(keywords.get("action"))
    default: object = False if action == "store_true" else True if action == "store_false" else None
    if "default" in keywords:
        value = evaluate(keywords["default"])
        default = (
            Unknown(f"{where}: the default of {longs[0] if longs else flags[0]} is not a literal")
            if isinstance(value, Unread)
            else value
        )
    converter = _type(keywords.get("type"), where)
    if isinstance(default, str) and converter in (int, float):
        default = _converted_default(default, converter, where)
    choices: tuple[object, ...] | Unknown | None = None
    if "choices" in keywords:
        value = evaluate(keywords["choices"])
        choices = (
            tuple(value)
            if isinstance(value, list | tuple)
            else Unknown(f"{where}: the choices of {flags[0]} are not a literal")
        )
    return Option(
        tuple(flags),
        dest,
        converter,
        default,
        action,
        choices,
        call.lineno,
    )


def _converted_default(default: str, converter: type, where: str) -> object:
    """argparse parses a string default with the option's type, as if it were given."""
    try:
        return converter(default)
    except ValueError:
        return Unknown(f"{where}: the default {default!r} is not a valid {converter.__name__}")


def _text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _type(node: ast.expr | None, where: str) -> type | Unknown | None:
    if node is None:
        return None
    if isinstance(node, ast.Name) and node.id in _TYPES:
        return _TYPES[node.id]
    return Unknown(f"{where}: type={ast.unparse(node)} converts the value in a way not read")


def read_dataclass_defaults(path: Path, name: str) -> dict[str, object]:
    """The annotated fields of class `name` and their default values."""
    tree = _parse(path)
    if isinstance(tree, str):
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == name:
            fields: dict[str, object] = {}
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    value = evaluate(stmt.value) if stmt.value else Unread()
                    fields[stmt.target.id] = (
                        Unknown(f"{path.name}:{stmt.lineno}: {name}.{stmt.target.id}")
                        if isinstance(value, Unread)
                        else value
                    )
            return fields
    return {}


def read_fallbacks(path: Path) -> dict[str, object]:
    """chat_sft.py's `("device_batch_size", 32, meta)` tuples: the value it uses when neither
    the flag nor the checkpoint gives one."""
    tree = _parse(path)
    if isinstance(tree, str):
        return {}
    found: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) >= 2:
            name = _text(node.elts[0])
            if name in INHERITED:
                value = evaluate(node.elts[1])
                found[name] = (
                    Unknown(f"{path.name}:{node.lineno}: the fallback of {name}")
                    if isinstance(value, Unread)
                    else value
                )
    return found


def read_dict_keys(path: Path, name: str) -> tuple[str, ...] | Unknown:
    """The string keys of a module-level `name = {...}` dict literal."""
    tree = _parse(path)
    if isinstance(tree, str):
        return Unknown(tree)
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            keys = [_text(k) if k is not None else None for k in node.value.keys]
            if all(k is not None for k in keys):
                return tuple(k for k in keys if k is not None)
            return Unknown(f"{path.name}:{node.lineno}: {name} has keys that are not strings")
    return Unknown(f"{path}: no {name} = {{...}} found")
