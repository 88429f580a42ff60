"""What a config means to nanoGPT: every key's effective value and where it came from.

nanoGPT `exec`s a config file in train.py's globals, so statements run in order, later ones
win, and expressions may use earlier keys or train.py's defaults. This module replays that
statically: values that would need running code are UNKNOWN, never guessed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst

from gptlint.facts.gpus import DEFAULT_GPU, PROFILES, GpuProfile
from gptlint.facts.kinds import ValueKind
from gptlint.facts.values import UNKNOWN
from gptlint.nanogpt.configfile import Assignment, Binding, ConfigFile, parse_config
from gptlint.nanogpt.evaluate import TOO_LARGE, apply_augmented_why, evaluate_why, identifier
from gptlint.nanogpt.schema import NANOGPT_SCHEMA, Schema, schema_for
from gptlint.text.decode import SourceError, read_source


class ConfigError(Exception):
    """A config file that cannot be read or parsed; str() is `path:line:col: problem`."""


class OverrideError(Exception):
    """A `KEY=VALUE` override nanoGPT's configurator would reject."""


@dataclass(frozen=True)
class Resolved:
    """A key's effective value and its provenance.

    `kind` is DEFAULT (from the schema), FILE (an assignment in the config), UNKNOWN (an
    import, `exec` or conditional block made it unknowable) or OVERRIDE (`KEY=VALUE`).
    """

    key: str
    value: Any
    kind: ValueKind
    assignment: Assignment | None = None
    binding: Binding | None = None
    text: str = ""


class EffectiveConfig:
    """A config file resolved against a schema: `get(key)`, `origin(key)`, `resolved(key)`."""

    def __init__(self, file: ConfigFile, schema: Schema, values: dict[str, Resolved]) -> None:
        self.file = file
        self.schema = schema
        self._values = values

    @property
    def path(self) -> str:
        return self.file.path

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def keys(self) -> Iterator[str]:
        return iter(self._values)

    def get(self, key: str) -> Any:
        """The effective value of `key`, or UNKNOWN."""
        resolved = self._values.get(key)
        return UNKNOWN if resolved is None else resolved.value

    def acted_on(self, key: str) -> Any:
        """The value of `key` train.py acts on: `get(key)`, or None where train.py never reads
        the key (a fork that keeps nanoGPT's `eval_only = False` but not the `if` that reads
        it: setting it changes nothing)."""
        return None if key in self.schema.unread else self.get(key)

    def env(self) -> dict[str, Any]:
        """Every key and name bound so far with its value (as expressions see them)."""
        return {key: resolved.value for key, resolved in self._values.items()}

    def resolved(self, key: str) -> Resolved | None:
        return self._values.get(key)

    def origin(self, key: str) -> str:
        """Where `key`'s value comes from, e.g. `config/x.py:3`, `default (nanoGPT train.py)` or
        `config/x.py:3 (too large to evaluate statically)`."""
        resolved = self._values.get(key)
        if resolved is None:
            return "not set"
        if resolved.kind == ValueKind.DEFAULT:
            spec = self.schema.keys.get(key)
            if spec is not None and spec.machine is not None:
                return f"default ({self.schema.origin}:{spec.line}, for {spec.machine})"
            return f"default ({self.schema.origin})"
        if resolved.kind == ValueKind.OVERRIDE:
            return f"override {resolved.text}"
        node: cst.CSTNode | None = resolved.assignment.target if resolved.assignment else None
        if node is None and resolved.binding is not None:
            node = resolved.binding.statement
        line = self.file.position(node).start.line if node is not None else 1
        where = f"{self.path}:{line}"
        return f"{where} ({resolved.text})" if resolved.text else where

    def with_value(self, key: str, value: Any, where: str) -> EffectiveConfig:
        """This config with `key` set to `value` by the training script (`where`: its line)."""
        values = dict(self._values)
        values[key] = Resolved(key, value, ValueKind.OVERRIDE, text=f"by {where}")
        return EffectiveConfig(self.file, self.schema, values)

    def with_overrides(self, items: Iterable[str]) -> EffectiveConfig:
        """Apply `--key=value` overrides as nanoGPT's configurator.py does.

        The key must exist; the value is `ast.literal_eval`'d, falling back to the raw string;
        its type must equal the current value's type.
        """
        values = dict(self._values)
        for item in items:
            key, sep, raw = item.removeprefix("--").partition("=")
            key = key.strip()
            if not sep or not key:
                raise OverrideError(f"override {item!r} is not KEY=VALUE")
            if key not in values:
                raise OverrideError(f"unknown config key: {key} (from override {item!r})")
            try:
                new = ast.literal_eval(raw)
            except (SyntaxError, ValueError):
                new = raw
            old = values[key].value
            if old is not UNKNOWN and type(new) is not type(old):
                raise OverrideError(
                    f"override {key}={raw}: type {type(new).__name__} does not match the"
                    f" config's {type(old).__name__} value {old!r} (nanoGPT asserts equal types)"
                )
            values[key] = Resolved(key, new, ValueKind.OVERRIDE, text=f"{key}={raw}")
        return EffectiveConfig(self.file, self.schema, values)


def resolve(
    file: ConfigFile, schema: Schema = NANOGPT_SCHEMA, until: int | None = None
) -> EffectiveConfig:
    """Replay `file`'s top-level statements over `schema`'s defaults (those before the
    top-level statement number `until`, if given)."""
    defaults, default_env = _defaults(schema)
    values, env = dict(defaults), dict(default_env)
    too_large: set[str] = set()  # names whose value is past the evaluation budget
    events = sorted(
        [(a.index, 0, a) for a in file.assignments] + [(b.index, 1, b) for b in file.bindings],
        key=lambda event: (event[0], event[1]),
    )
    for index, _, event in events:
        if until is not None and index >= until:
            break
        if isinstance(event, Binding):
            names = event.names if event.names is not None else set(env) | set(schema.keys)
            for name in names:
                values[name] = Resolved(
                    name, UNKNOWN, ValueKind.UNKNOWN, binding=event, text=event.reason
                )
                env[name] = UNKNOWN
            too_large.difference_update(names)
            continue
        value, why = _assigned_value(event, env, too_large)
        kind = ValueKind.FILE
        if event.conditional:
            value, kind, why = UNKNOWN, ValueKind.UNKNOWN, "set inside a block"
        values[event.key] = Resolved(event.key, value, kind, assignment=event, text=why or "")
        env[event.key] = value
        if why == TOO_LARGE:
            too_large.add(event.key)
        else:
            too_large.discard(event.key)
    return EffectiveConfig(file, schema, values)


_DEFAULTS: dict[int, tuple[Schema, dict[str, Resolved], dict[str, Any]]] = {}


def _defaults(schema: Schema) -> tuple[dict[str, Resolved], dict[str, Any]]:
    """Every key of `schema` at its default, and the values alone: made once per schema (a
    run lints every config of a folder against the same one), copied for each file."""
    known = _DEFAULTS.get(id(schema))
    if known is None or known[0] is not schema:
        if len(_DEFAULTS) >= 64:
            _DEFAULTS.clear()
        values = {
            key: Resolved(key, spec.default, ValueKind.DEFAULT) for key, spec in schema.keys.items()
        }
        known = (schema, values, {key: r.value for key, r in values.items()})
        _DEFAULTS[id(schema)] = known
    return known[1], known[2]


def _assigned_value(
    assignment: Assignment, env: dict[str, Any], too_large: set[str]
) -> tuple[Any, str | None]:
    """The value an assignment binds, and TOO_LARGE where it is UNKNOWN because it, or a
    name it reads, is past the evaluation budget (`x = 2`, then `x = x*x` forty times)."""
    if assignment.value is None:
        return UNKNOWN, None
    value, why = evaluate_why(assignment.value, env)
    if assignment.operator is not None and value is not UNKNOWN:
        current = env.get(assignment.key, UNKNOWN)
        value, why = apply_augmented_why(assignment.operator, current, value)
        if value is UNKNOWN and assignment.key in too_large:
            why = TOO_LARGE
    if value is UNKNOWN and why is None and too_large and _reads(assignment.value, too_large):
        why = TOO_LARGE
    return value, why


def _reads(node: cst.BaseExpression, names: set[str]) -> bool:
    """Whether `node` mentions one of `names`."""
    finder = _NameFinder(names)
    node.visit(finder)
    return finder.found


class _NameFinder(cst.CSTVisitor):
    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.found = False

    def visit_Name(self, node: cst.Name) -> None:
        if identifier(node.value) in self.names:
            self.found = True


def load_config(
    path: str | Path, defaults: Path | None = None, gpu: GpuProfile = PROFILES[DEFAULT_GPU]
) -> EffectiveConfig:
    """Read, parse and resolve the config at `path` with its schema (`schema_for`: the
    `defaults` train.py, else the one beside the config, on the target `gpu`)."""
    try:
        file = parse_config(read_source(str(path)))
    except SourceError as exc:
        raise ConfigError(f"{path}:{exc.line}:{exc.col}: {exc.message}") from None
    return resolve(file, schema_for(Path(path), defaults, gpu, file.source.text))
