"""Places in a file that define a model shape, each able to say a key's value and to write it.

A `ConfigScope` is the file's top-level config as nanoGPT resolves it (defaults included); a
`CallScope` is one `GPTConfig(...)` call or `dict(...)`/`{...}` preset, whose omitted keywords
take `GPTConfig`'s dataclass defaults (presets: unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import libcst as cst

from gptlint.facts.values import UNKNOWN
from gptlint.lint.diagnostics import Edit, Rewrite
from gptlint.nanogpt.configfile import SHAPE_KEYS, Assignment, ShapeCall
from gptlint.nanogpt.evaluate import evaluate
from gptlint.nanogpt.resolve import EffectiveConfig, resolve
from gptlint.nanogpt.schema import DEFAULT_VOCAB_SIZE, GPTCONFIG_DEFAULTS
from gptlint.text.literals import literal, replace_literal


class ConfigScope:
    """The file's top-level keys, resolved over the schema's defaults."""

    kind = "config"

    def __init__(self, config: EffectiveConfig, vocab_size: int = DEFAULT_VOCAB_SIZE) -> None:
        self.config = config
        self.vocab_size = vocab_size

    def value(self, key: str) -> Any:
        if key == "vocab_size" and key not in self.config.schema:
            return self.vocab_size  # nanoGPT ignores a config's vocab_size (meta.pkl or 50304)
        return self.config.get(key)

    def node_for(self, key: str) -> cst.CSTNode | None:
        resolved = self.config.resolved(key)
        return resolved.assignment.target if resolved and resolved.assignment else None

    def set_value(self, key: str, value: Any) -> tuple[Edit, ...]:
        """Edits that make `key` equal `value`: rewrite its assignment, or add one."""
        resolved = self.config.resolved(key)
        assignment = resolved.assignment if resolved else None
        if assignment is not None and assignment.value is not None and _replaceable(assignment):
            return (Edit(assignment.value, _literal_rewrite(value)),)
        line = _assign_line(key, value)
        anchor = assignment.statement if assignment is not None else self._anchor()
        if anchor is None:  # a file with no statements: the assignment becomes its first line
            module = self.config.file.module
            return (Edit(module, _first_line(line)),)
        return (Edit(anchor, _followed_by([line])),)

    def set_values(self, values: dict[str, Any]) -> tuple[Edit, ...]:
        """Edits that make every key of `values` equal its value; keys added at the same place
        share one edit, in the order given."""
        edits: list[Edit] = []
        added: dict[cst.CSTNode, list[cst.SimpleStatementLine]] = {}
        for key, value in values.items():
            edit = self.set_value(key, value)[0]
            if isinstance(edit.old, cst.BaseStatement):
                added.setdefault(edit.old, []).append(_assign_line(key, value))
            else:
                edits.append(edit)
        for anchor, lines in added.items():
            edits.append(Edit(anchor, _followed_by(lines)))
        return tuple(edits)

    def _anchor(self) -> cst.BaseStatement | None:
        """Where a new shape assignment goes: after the last top-level shape assignment,
        else after the last top-level assignment, else at the end of the file (None: the file
        has no statements)."""
        plain = [a for a in self.config.file.assignments if not a.conditional]
        shape = [a for a in plain if a.key in SHAPE_KEYS]
        chosen = shape or plain
        if chosen:
            return chosen[-1].statement
        body = self.config.file.module.body
        return body[-1] if body else None


def _literal_rewrite(value: Any) -> Rewrite:
    """A rewrite that writes `value` over an expression, in its literal style."""

    def rewrite(old: cst.CSTNode) -> cst.CSTNode:
        if not isinstance(old, cst.BaseExpression):
            raise TypeError(f"a literal replaces an expression, not {type(old).__name__}")
        return replace_literal(old, value)

    return rewrite


def _first_line(line: cst.SimpleStatementLine) -> Rewrite:
    """A rewrite that makes `line` the body of an empty module."""
    return lambda old: cst.ensure_type(old, cst.Module).with_changes(
        body=(line,), has_trailing_newline=True
    )


def _followed_by(lines: list[cst.SimpleStatementLine]) -> Rewrite:
    """A rewrite that adds `lines` after a statement."""
    return lambda old: cst.FlattenSentinel([old, *lines])


def _removed(_old: cst.CSTNode) -> cst.RemovalSentinel:
    return cst.RemovalSentinel.REMOVE


def _with_comments_above(moved: tuple[cst.EmptyLine, ...]) -> Rewrite:
    """A rewrite that puts the comment lines `moved` above a statement's own."""

    def rewrite(old: cst.CSTNode) -> cst.CSTNode:
        if not isinstance(old, cst.SimpleStatementLine | cst.BaseCompoundStatement):
            raise TypeError(f"comment lines go above a statement, not {type(old).__name__}")
        return old.with_changes(leading_lines=(*moved, *old.leading_lines))

    return rewrite


def _assign_line(key: str, value: Any) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(key))], literal(value))])


def removable(assignment: Assignment) -> bool:
    """A plain top-level `key = value` that is the only statement on its line."""
    statement = assignment.statement
    return (
        _replaceable(assignment)
        and isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
    )


def remove_statements(module: cst.Module, doomed: list[cst.BaseStatement]) -> tuple[Edit, ...]:
    """Edits that delete the top-level statements `doomed`, keeping the comment lines above
    each one: they move to the next statement that stays. None (empty) if a deleted statement
    has comment lines above it and nothing follows it."""
    gone = set(doomed)
    edits = [Edit(statement, _removed) for statement in doomed]
    carried: list[cst.EmptyLine] = []
    for statement in module.body:
        if statement in gone:
            carried.extend(statement.leading_lines)
        elif carried:
            edits.append(Edit(statement, _with_comments_above(tuple(carried))))
            carried = []
    if any(line.comment is not None for line in carried):
        return ()
    return tuple(edits)


def _replaceable(assignment: Assignment) -> bool:
    node = assignment.node
    if isinstance(node, cst.Assign) and len(node.targets) != 1:
        return False
    if not isinstance(node, cst.AnnAssign | cst.Assign):
        return False
    return assignment.is_plain and node.value is assignment.value


class CallScope:
    """One `GPTConfig(...)` call or shape preset."""

    def __init__(
        self, call: ShapeCall, env: dict[str, Any], defaults: dict[str, Any] | None = None
    ) -> None:
        self.call = call
        self.kind = call.kind
        self.defaults = GPTCONFIG_DEFAULTS if defaults is None else defaults
        self._values = {key: evaluate(value, env) for key, (value, _) in call.args.items()}

    def value(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        return self.defaults.get(key, UNKNOWN) if self.kind == "GPTConfig" else UNKNOWN

    def node_for(self, key: str) -> cst.CSTNode | None:
        return self.call.args[key][1] if key in self.call.args else None

    def set_value(self, key: str, value: Any) -> tuple[Edit, ...]:
        if key in self.call.args:
            return (Edit(self.call.args[key][0], _literal_rewrite(value)),)
        if isinstance(self.call.node, cst.Dict):
            element = cst.DictElement(cst.SimpleString(f'"{key}"'), literal(value))
            return (
                Edit(
                    self.call.node,
                    lambda old: cst.ensure_type(old, cst.Dict).with_changes(
                        elements=_append(cst.ensure_type(old, cst.Dict).elements, element)
                    ),
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
        return (Edit(self.call.node, _with_arg(arg)),)


def _with_arg(arg: cst.Arg) -> Rewrite:
    """A rewrite that adds the keyword argument `arg` to a call."""

    def rewrite(old: cst.CSTNode) -> cst.CSTNode:
        call = cst.ensure_type(old, cst.Call)
        return call.with_changes(args=_append(call.args, arg))

    return rewrite


def _append(
    items: Sequence[cst.Arg] | Sequence[cst.BaseDictElement], new: cst.Arg | cst.DictElement
) -> tuple:
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


def shape_scopes(
    config: EffectiveConfig,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    call_defaults: dict[str, Any] | None = None,
) -> list[ConfigScope | CallScope]:
    """Every shape definition in the file. The top-level config counts only for a scratch run:
    with `init_from` 'resume' or a gpt2* preset nanoGPT takes the shape from elsewhere.
    `GPTConfig(...)` calls take omitted fields from `call_defaults` (a fork's model.py), else
    nanoGPT's dataclass defaults."""
    scopes: list[ConfigScope | CallScope] = []
    init_from = config.acted_on("init_from")  # None: train.py never reads it (scratch)
    if init_from in ("scratch", None) or (
        init_from is UNKNOWN and "init_from" not in config.schema
    ):
        scopes.append(ConfigScope(config, vocab_size))
    envs: dict[int, dict[str, Any]] = {}
    for call in config.file.shape_calls:
        env: dict[str, Any] = {}
        if call.top_level and _uses_names(call):  # replaying the file for each call is costly
            if call.index not in envs:
                envs[call.index] = resolve(config.file, config.schema, until=call.index).env()
            env = envs[call.index]
        scopes.append(CallScope(call, env, call_defaults))
    return scopes


def _uses_names(call: ShapeCall) -> bool:
    """Whether any argument of `call` reads a name (True, False and None aside): only then
    does its value depend on the config before it."""
    finder = _NameFinder()
    for value, _ in call.args.values():
        value.visit(finder)
        if finder.found:
            return True
    return False


class _NameFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_Name(self, node: cst.Name) -> bool:
        if node.value not in ("True", "False", "None"):
            self.found = True
        return False
