"""Places in a file that define a model shape, each able to say a key's value and to write it.

A `ConfigScope` is the file's top-level config as nanoGPT resolves it (defaults included); a
`CallScope` is one `GPTConfig(...)` call or `dict(...)`/`{...}` preset, whose omitted keywords
take `GPTConfig`'s dataclass defaults (presets: unknown).
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from gptlint.configfile import SHAPE_KEYS, Assignment, ShapeCall
from gptlint.diagnostics import Edit
from gptlint.evaluate import evaluate
from gptlint.literals import literal
from gptlint.resolve import EffectiveConfig, resolve
from gptlint.schema import DEFAULT_VOCAB_SIZE, GPTCONFIG_DEFAULTS
from gptlint.values import UNKNOWN


class ConfigScope:
    """The file's top-level keys, resolved over the schema's defaults."""

    kind = "config"

    def __init__(self, config: EffectiveConfig) -> None:
        self.config = config

    def value(self, key: str) -> Any:
        if key == "vocab_size" and key not in self.config.schema:
            return DEFAULT_VOCAB_SIZE  # nanoGPT ignores a config's vocab_size (meta.pkl or 50304)
        return self.config.get(key)

    def is_default(self, key: str) -> bool:
        resolved = self.config.resolved(key)
        return resolved is not None and resolved.kind == "default"

    def node_for(self, key: str) -> cst.CSTNode | None:
        resolved = self.config.resolved(key)
        return resolved.assignment.target if resolved and resolved.assignment else None

    def set_value(self, key: str, value: Any) -> tuple[Edit, ...]:
        """Edits that make `key` equal `value`: rewrite its assignment, or add one."""
        resolved = self.config.resolved(key)
        assignment = resolved.assignment if resolved else None
        if assignment is not None and _replaceable(assignment):
            return (Edit(assignment.value, lambda _old: literal(value)),)
        anchor = assignment.statement if assignment is not None else self._anchor()
        line = cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(cst.Name(key))], literal(value))]
        )
        return (Edit(anchor, lambda old: cst.FlattenSentinel([old, line])),)

    def _anchor(self) -> cst.BaseStatement:
        """Where a new shape assignment goes: after the last top-level shape assignment,
        else after the last top-level assignment, else at the end of the file."""
        plain = [a for a in self.config.file.assignments if not a.conditional]
        shape = [a for a in plain if a.key in SHAPE_KEYS]
        chosen = shape or plain
        if chosen:
            return chosen[-1].statement
        return self.config.file.module.body[-1]


def _replaceable(assignment: Assignment) -> bool:
    node = assignment.node
    single = isinstance(node, cst.AnnAssign) or (
        isinstance(node, cst.Assign) and len(node.targets) == 1
    )
    return assignment.is_plain and single and node.value is assignment.value


class CallScope:
    """One `GPTConfig(...)` call or shape preset."""

    def __init__(self, call: ShapeCall, env: dict[str, Any]) -> None:
        self.call = call
        self.kind = call.kind
        self._values = {key: evaluate(value, env) for key, (value, _) in call.args.items()}

    def value(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        return GPTCONFIG_DEFAULTS.get(key, UNKNOWN) if self.kind == "GPTConfig" else UNKNOWN

    def is_default(self, key: str) -> bool:
        return key not in self._values

    def node_for(self, key: str) -> cst.CSTNode | None:
        return self.call.args[key][1] if key in self.call.args else None

    def set_value(self, key: str, value: Any) -> tuple[Edit, ...]:
        if key in self.call.args:
            return (Edit(self.call.args[key][0], lambda _old: literal(value)),)
        if isinstance(self.call.node, cst.Dict):
            element = cst.DictElement(cst.SimpleString(f'"{key}"'), literal(value))
            return (
                Edit(
                    self.call.node,
                    lambda old: old.with_changes(elements=_append(old.elements, element)),
                ),
            )
        arg = cst.Arg(
            literal(value),
            keyword=cst.Name(key),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
        )
        return (Edit(self.call.node, lambda old: old.with_changes(args=_append(old.args, arg))),)


def _append(items: tuple, new: cst.Arg | cst.DictElement) -> tuple:
    """`items` with `new` after the last one, keeping a trailing comma's layout."""
    if not items:
        return (new,)
    last = items[-1]
    if isinstance(last.comma, cst.Comma):  # trailing comma: the new item takes it over
        previous = (
            items[-2].comma if len(items) > 1 and isinstance(items[-2].comma, cst.Comma) else None
        )
        separator = previous or cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        return (*items[:-1], last.with_changes(comma=separator), new.with_changes(comma=last.comma))
    return (
        *items[:-1],
        last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
        new,
    )


def shape_scopes(config: EffectiveConfig) -> list[ConfigScope | CallScope]:
    """Every shape definition in the file. The top-level config counts only for a scratch run:
    with `init_from` 'resume' or a gpt2* preset nanoGPT takes the shape from elsewhere."""
    scopes: list[ConfigScope | CallScope] = []
    init_from = config.get("init_from")
    if init_from == "scratch" or (init_from is UNKNOWN and "init_from" not in config.schema):
        scopes.append(ConfigScope(config))
    for call in config.file.shape_calls:
        env = resolve(config.file, config.schema, until=call.index).env() if call.top_level else {}
        scopes.append(CallScope(call, env))
    return scopes
