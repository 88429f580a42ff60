"""What a config file says, read from its libcst tree in file order (nothing is executed)."""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeGuard

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from gptlint.nanogpt.evaluate import identifier
from gptlint.text.decode import Source, SourceError
from gptlint.text.deep import run_deep
from gptlint.text.positions import (
    StatementPositions,
    line_starts,
    small_starts,
    statement_spans,
    statements_matching,
)
from gptlint.text.reread import Reparser
from gptlint.text.syntax import check_syntax
from gptlint.text.tree import parse_module

SHAPE_KEYS = frozenset({"n_layer", "n_head", "n_embd"})

NodeRewrite = Callable[
    [cst.CSTNode], cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNode]
]
"""What `ConfigFile.code_with` applies to a statement or the module: a node's `visit`."""


@dataclass(frozen=True, eq=False)
class Assignment:
    """`key = value` (or `key: T = value`, `key += value`) somewhere in the file.

    `statement` is the top-level statement that holds it, `index` that statement's position in
    the module body; `conditional` marks assignments inside `if`/`for`/`try`/`with`/`while`
    blocks, whose effect cannot be known statically.
    """

    key: str
    target: cst.Name
    value: cst.BaseExpression | None
    node: cst.BaseSmallStatement
    statement: cst.BaseStatement
    index: int
    conditional: bool = False
    operator: cst.BaseAugOp | None = None

    @property
    def is_plain(self) -> bool:
        """A plain top-level `key = value` whose value a fix may replace."""
        return not self.conditional and self.operator is None and self.value is not None


@dataclass(frozen=True, eq=False)
class Binding:
    """A top-level statement that binds names to values static reading cannot know.

    `names` is None for `from x import *` and `exec(...)`, which may bind anything. `modules`:
    the modules an import imports, as dotted names (none for a relative import).
    """

    names: frozenset[str] | None
    statement: cst.BaseStatement
    index: int
    reason: str
    modules: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ShapeCall:
    """A `GPTConfig(...)` call, or a `dict(...)`/`{...}` preset carrying model shape keys."""

    kind: str  # 'GPTConfig' | 'preset'
    node: cst.Call | cst.Dict
    args: dict[str, tuple[cst.BaseExpression, cst.CSTNode]] = field(default_factory=dict)
    index: int = 0
    top_level: bool = True


@dataclass(eq=False)
class ConfigFile:
    """A parsed config: its source, tree, assignments and unknown bindings in file order."""

    source: Source
    module: cst.Module
    assignments: list[Assignment]
    bindings: list[Binding]
    shape_calls: list[ShapeCall]
    statement_lines: list[int] | None = None  # each top-level statement's first line
    statement_starts: list[tuple[int, int]] | None = None  # CPython's (line, byte column)
    statement_last_lines: list[int] | None = None  # each top-level statement's last line

    @property
    def path(self) -> str:
        return self.source.path

    @cached_property
    def _positions(self) -> dict[cst.CSTNode, CodeRange]:
        wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
        return dict(wrapper.resolve(PositionProvider))

    @cached_property
    def _statement_positions(self) -> StatementPositions | None:
        if self.statement_lines is None or len(self.statement_lines) != len(self.module.body):
            return None
        return StatementPositions(
            self.module, self.statement_lines, self.statement_starts, self.source.line_text
        )

    @cached_property
    def _statement_of(self) -> dict[cst.CSTNode, int]:
        """The top-level statement index of the nodes rules report on."""
        index: dict[cst.CSTNode, int] = {s: i for i, s in enumerate(self.module.body)}
        for a in self.assignments:
            index[a.target] = index[a.node] = a.index
            if a.value is not None:
                index[a.value] = a.index
        for call in self.shape_calls:
            index[call.node] = call.index
            index.update({n: call.index for pair in call.args.values() for n in pair})
        return index

    @cached_property
    def _small_of(self) -> dict[cst.CSTNode, cst.BaseSmallStatement]:
        """The small statement of the assignment nodes on lines of `;`-joined statements."""
        small: dict[cst.CSTNode, cst.BaseSmallStatement] = {}
        for a in self.assignments:
            if isinstance(a.statement, cst.SimpleStatementLine) and len(a.statement.body) > 1:
                small.update({n: a.node for n in (a.target, a.value, a.node) if n is not None})
        return small

    def position(self, node: cst.CSTNode) -> CodeRange:
        """Where `node` is (1-based lines, 0-based columns). Only the top-level statement that
        holds a known node is regenerated (only its small statement, on a line of statements
        joined by `;`); any other node costs the whole module, once."""
        index = self._statement_of.get(node)
        if index is not None and self._statement_positions is not None:
            return self._statement_positions.position(node, index, self._small_of.get(node))
        return self._positions[node]

    def code_with(self, rewrite: NodeRewrite, nodes: Iterable[cst.CSTNode]) -> str:
        """The file's code with `rewrite` applied to the top-level statements that hold
        `nodes` (or to the whole module where a node's statement is not known). Only those
        statements are regenerated and put in place of their text, which is what regenerating
        the whole module gives (libcst writes every other statement back as it was read) at
        a fraction of the cost for a large file."""
        positions = self._statement_positions
        indexes = set()
        for node in nodes:
            index = self._statement_of.get(node)
            if index is None or positions is None:
                return self._rewritten(rewrite)
            indexes.add(index)
        text, starts = self.source.text, self._line_offsets
        first_lines = positions.first_lines if positions is not None else []  # None: no nodes
        pieces, at = [], 0
        for index in sorted(indexes):
            statement = self.module.body[index]
            line = first_lines[index] - len(statement.leading_lines)
            old = self.module.code_for_node(statement)
            begin = starts[line - 1] if 0 < line <= len(starts) else -1
            if begin < at or text[begin : begin + len(old)] != old:
                return self._rewritten(rewrite)
            new = rewrite(statement)
            if not isinstance(new, cst.BaseStatement):  # removed, or split into several
                return self._rewritten(rewrite)
            pieces += [text[at:begin], self.module.code_for_node(new)]
            at = begin + len(old)
        return "".join([*pieces, text[at:]])

    def _rewritten(self, rewrite: NodeRewrite) -> str:
        """The code of the whole module with `rewrite` applied."""
        return cst.ensure_type(rewrite(self.module), cst.Module).code

    @cached_property
    def _line_offsets(self) -> list[int]:
        """Where each line of the text starts (lines end at \\r\\n, \\r or \\n, as Python's)."""
        return line_starts(self.source.text)

    def assignments_of(self, key: str) -> list[Assignment]:
        """Every assignment of `key`, in file order."""
        return [a for a in self.assignments if a.key == key]


def parse_config(source: Source, reparser: Reparser | None = None) -> ConfigFile:
    """Parse `source` with libcst and collect what it assigns; SourceError if it isn't Python.
    `reparser`: the tree of an earlier text of the file that libcst may read `source` from
    (`tree.parse_module`)."""
    checked = check_syntax(source.text, source.path)
    try:
        module = run_deep(parse_module, checked, reparser)
    except cst.ParserSyntaxError as exc:
        message = str(exc.message).strip().splitlines()[0] if exc.message else "invalid syntax"
        raise SourceError(f"syntax error: {message}", exc.raw_line, exc.raw_column + 1) from None
    except RecursionError:
        raise SourceError("expression nested too deeply to read") from None
    if source.text.endswith("\r") and not module.has_trailing_newline:
        # libcst looks for a final "\n" only: a file whose lines end in a bare "\r" (old Mac
        # style) would lose its last line ending when the tree is written back.
        module = module.with_changes(has_trailing_newline=True)
    assignments: list[Assignment] = []
    bindings: list[Binding] = []
    walrus = ":=" in source.text
    for index, statement in enumerate(module.body):
        _collect(statement, statement, index, False, assignments, bindings)
        if walrus:
            _collect_walrus(statement, index, bindings)
    spans = statement_spans(checked.tree)
    lines = [first for first, _ in spans]
    shape_calls = []
    if _may_hold_shapes(source.text):
        holding = statements_matching(source.text, lines, len(module.body), _SHAPE_WORDS)
        shape_calls = _find_shape_calls(module, holding)
    return ConfigFile(
        source,
        module,
        assignments,
        bindings,
        shape_calls,
        lines,
        small_starts(checked.tree),
        [last for _, last in spans],
    )


def _collect(
    node: cst.CSTNode,
    statement: cst.BaseStatement,
    index: int,
    conditional: bool,
    assignments: list[Assignment],
    bindings: list[Binding],
) -> None:
    if isinstance(node, cst.SimpleStatementLine):
        for small in node.body:
            _collect_small(small, statement, index, conditional, assignments, bindings)
    elif isinstance(node, cst.FunctionDef | cst.ClassDef):
        bindings.append(Binding(frozenset({node.name.value}), statement, index, "definition"))
    elif isinstance(node, cst.For):
        bindings.append(Binding(_target_names(node.target), statement, index, "for loop"))
        for child in node.children:
            _collect(child, statement, index, True, assignments, bindings)
    elif isinstance(node, cst.With):
        for item in node.items:
            if item.asname is not None:
                names = _target_names(item.asname.name)
                bindings.append(Binding(names, statement, index, "with ... as"))
        for child in node.children:
            _collect(child, statement, index, True, assignments, bindings)
    elif isinstance(node, cst.BaseCompoundStatement):
        for child in node.children:
            _collect(child, statement, index, True, assignments, bindings)
    elif isinstance(node, cst.BaseSuite | cst.Else | cst.ExceptHandler | cst.Finally):
        if isinstance(node, cst.ExceptHandler) and node.name is not None:
            names = _target_names(node.name.name)
            bindings.append(Binding(names, statement, index, "except ... as"))
        for child in node.children:
            _collect(child, statement, index, conditional, assignments, bindings)
    elif isinstance(node, cst.BaseSmallStatement):  # `if x: key = value` on one line
        _collect_small(node, statement, index, conditional, assignments, bindings)
    elif isinstance(node, cst.BaseStatement):
        for child in node.children:
            _collect(child, statement, index, True, assignments, bindings)


def _collect_small(
    small: cst.BaseSmallStatement,
    statement: cst.BaseStatement,
    index: int,
    conditional: bool,
    assignments: list[Assignment],
    bindings: list[Binding],
) -> None:
    where = (small, statement, index, conditional, assignments)
    if isinstance(small, cst.Assign):
        for target in small.targets:
            if _is_namespace_item(target.target):
                bindings.append(Binding(_item_name(target.target), statement, index, "globals()"))
            else:
                _add_targets(target.target, small.value, None, *where)
    elif isinstance(small, cst.AnnAssign):
        _add_targets(small.target, small.value, None, *where)
    elif isinstance(small, cst.AugAssign):
        _add_targets(small.target, small.value, small.operator, *where)
    elif isinstance(small, cst.ImportFrom):
        module = None if small.relative else small.module
        modules: tuple[str, ...] = () if module is None else (_dotted(module),)
        if isinstance(small.names, cst.ImportStar):
            bindings.append(Binding(None, statement, index, "star import", modules))
        else:
            names = _import_names(small.names)
            bindings.append(Binding(names, statement, index, "import", modules))
    elif isinstance(small, cst.Del):
        names = _target_names(small.target)
        bindings.append(Binding(names, statement, index, "del"))
    elif isinstance(small, cst.Import):
        modules = tuple(_dotted(alias.name) for alias in small.names)
        bindings.append(Binding(_import_names(small.names), statement, index, "import", modules))
    elif isinstance(small, cst.Expr) and _is_exec_call(small.value):
        bindings.append(Binding(None, statement, index, "exec()"))
    elif isinstance(small, cst.Expr) and _is_namespace_update(small.value):
        bindings.append(Binding(None, statement, index, "globals()"))


def _add_targets(
    target: cst.BaseExpression,
    value: cst.BaseExpression | None,
    op: cst.BaseAugOp | None,
    small: cst.BaseSmallStatement,
    statement: cst.BaseStatement,
    index: int,
    conditional: bool,
    assignments: list[Assignment],
) -> None:
    """The assignments of `target = value` (each name of a tuple or list target). A function
    of its own, not a closure that calls itself: such a closure is a reference cycle, which
    kept every file's tree alive until the garbage collector ran."""
    if isinstance(target, cst.Name):
        assignments.append(
            Assignment(
                identifier(target.value),  # Python binds the NFKC form: fullwidth n is n
                target,
                value,
                small,
                statement,
                index,
                conditional,
                op,
            )
        )
    elif isinstance(target, cst.Tuple | cst.List):
        values = value.elements if isinstance(value, cst.Tuple | cst.List) else None
        pairs = (
            [
                (t.value, None if isinstance(v, cst.StarredElement) else v.value)
                for t, v in zip(target.elements, values, strict=True)
            ]
            if values is not None and len(values) == len(target.elements)
            else [(t.value, None) for t in target.elements]
        )
        for element, element_value in pairs:
            _add_targets(
                element, element_value, None, small, statement, index, conditional, assignments
            )


def _dotted(name: cst.Attribute | cst.Name) -> str:
    """`a.b.c` of an import's module name."""
    return cst.Module([]).code_for_node(name)


def _import_names(aliases: Sequence[cst.ImportAlias]) -> frozenset[str]:
    names = set()
    for alias in aliases:
        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
            names.add(alias.asname.name.value)
        else:
            node: cst.BaseExpression = alias.name
            while isinstance(node, cst.Attribute):
                node = node.value
            names.add(cst.ensure_type(node, cst.Name).value)  # a dotted name starts with one
    return frozenset(names)


def _target_names(target: cst.BaseExpression) -> frozenset[str]:
    """The names a target binds (`for a, (b, *c) in ...`, `with ... as a`, `del a, b`)."""
    if isinstance(target, cst.Name):
        return frozenset({identifier(target.value)})
    if isinstance(target, cst.Tuple | cst.List):
        return frozenset().union(*(_target_names(e.value) for e in target.elements))
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return frozenset()


_NAMESPACES = ("globals", "vars", "locals")


def _is_namespace_call(node: cst.BaseExpression) -> bool:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value in _NAMESPACES
        and not node.args
    )


def _is_namespace_item(target: cst.BaseExpression) -> TypeGuard[cst.Subscript]:
    """`globals()['key']` (or vars(), locals()) as an assignment target."""
    return isinstance(target, cst.Subscript) and _is_namespace_call(target.value)


def _item_name(target: cst.Subscript) -> frozenset[str] | None:
    """The key of `globals()['key']`; None when it is not a plain string (any name)."""
    if len(target.slice) == 1 and isinstance(target.slice[0].slice, cst.Index):
        key = target.slice[0].slice.value
        if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str):
            return frozenset({key.evaluated_value})
    return None


def _is_namespace_update(node: cst.BaseExpression) -> bool:
    """`globals().update(...)` / `.setdefault(...)`: may bind any name."""
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in ("update", "setdefault", "__setitem__")
        and _is_namespace_call(node.func.value)
    )


def _collect_walrus(statement: cst.BaseStatement, index: int, bindings: list[Binding]) -> None:
    """Names bound by `(key := value)` in a top-level statement (not inside a def or lambda)."""
    finder = _WalrusFinder()
    statement.visit(finder)
    if finder.names:
        bindings.append(Binding(frozenset(finder.names), statement, index, "assignment expression"))


class _WalrusFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        if isinstance(node.target, cst.Name):
            self.names.add(identifier(node.target.value))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _is_exec_call(node: cst.BaseExpression) -> bool:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value
        in (
            "exec",
            "execfile",
        )
    )


def _may_hold_shapes(text: str) -> bool:
    return "GPTConfig" in text or ("n_head" in text and ("dict(" in text or "{" in text))


_SHAPE_WORDS = re.compile(r"GPTConfig|dict|\{")  # in the text of any node _ShapeCallFinder finds


def _find_shape_calls(module: cst.Module, holding: Container[int] | None) -> list[ShapeCall]:
    """The shape calls of the statements in `holding` (of all, where None)."""
    finder = _ShapeCallFinder()
    for index, statement in enumerate(module.body):
        if holding is not None and index not in holding:
            continue  # no `GPTConfig`, `dict` or `{` in its text: no shape call
        finder.index = index
        finder.top_level = not isinstance(statement, cst.FunctionDef | cst.ClassDef)
        statement.visit(finder)
    return finder.found


class _ShapeCallFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[ShapeCall] = []
        self.index = 0
        self.top_level = True

    def visit_Call(self, node: cst.Call) -> None:
        name = _callee_name(node.func)
        if name not in ("GPTConfig", "dict"):
            return
        args: dict[str, tuple[cst.BaseExpression, cst.CSTNode]] = {
            identifier(arg.keyword.value): (arg.value, arg)
            for arg in node.args
            if arg.keyword is not None and not arg.star
        }
        if name == "GPTConfig" or len(SHAPE_KEYS & args.keys()) >= 2:
            kind = "GPTConfig" if name == "GPTConfig" else "preset"
            self.found.append(ShapeCall(kind, node, args, self.index, self.top_level))

    def visit_Dict(self, node: cst.Dict) -> None:
        args: dict[str, tuple[cst.BaseExpression, cst.CSTNode]] = {}
        for element in node.elements:
            if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
                key = element.key.evaluated_value
                if isinstance(key, str):
                    args[key] = (element.value, element)
        if len(SHAPE_KEYS & args.keys()) >= 2:
            self.found.append(ShapeCall("preset", node, args, self.index, self.top_level))


def _callee_name(func: cst.BaseExpression) -> str | None:
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None
