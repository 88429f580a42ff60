"""GPT2xx, keys: what nanoGPT's configurator silently accepts and ignores, repeats and retypes."""

from __future__ import annotations

import collections
import dataclasses
import difflib
import functools
import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import libcst as cst

from gptlint.facts.kinds import FixSafety, Severity, ValueKind
from gptlint.facts.values import UNKNOWN
from gptlint.lint.context import LintContext
from gptlint.lint.diagnostics import Edit, Rewrite
from gptlint.lint.rules.base import Invalid, ProposedFix, Rule, Valid, Violation
from gptlint.lint.rules.impossible import problem
from gptlint.nanogpt.configfile import Assignment, ConfigFile
from gptlint.nanogpt.schema import MODEL_ONLY_KEYS, NANOGPT_SCHEMA
from gptlint.text.literals import replace_literal
from gptlint.text.positions import statements_matching

# Spellings people carry over from other codebases, mapped to nanoGPT's key.
ALIASES = {
    "n_embed": "n_embd",
    "n_embedding": "n_embd",
    "d_model": "n_embd",
    "n_heads": "n_head",
    "n_layers": "n_layer",
    "num_layers": "n_layer",
    "num_heads": "n_head",
    "lr": "learning_rate",
    "max_lr": "learning_rate",
    "grad_accum_steps": "gradient_accumulation_steps",
    "gradient_accumulation": "gradient_accumulation_steps",
    "micro_batch_size": "batch_size",
    "seq_len": "block_size",
    "context_length": "block_size",
    "warmup_steps": "warmup_iters",
    "max_steps": "max_iters",
    "lr_decay_steps": "lr_decay_iters",
    "decay_lr_iters": "lr_decay_iters",
}


class _Keys:
    """The file's top-level keys that the schema does not know, and the names it reads."""

    def __init__(self, ctx: LintContext) -> None:
        self.ctx = ctx

    @cached_property
    def unknown(self) -> list[Assignment]:
        """Unknown keys, first assignment of each, skipping private, CONSTANT-style and model
        keys (GPT205) and names the file itself reads (helper variables)."""
        schema, seen, found = self.ctx.config.schema, set(), []
        for a in self.ctx.file.assignments:
            key = a.key
            if (
                key in seen
                or schema.reads_name(key)
                or key in MODEL_ONLY_KEYS
                or not _config_like(key)
            ):
                continue
            seen.add(key)
            found.append(a)
        if not found:
            return []
        sure = _never_read(self.ctx.file.source.text, self.ctx.file.assignments, found)
        if len(sure) == len(found):
            return found
        read = _read_names(self.ctx.file, {a.key for a in found if id(a) not in sure})
        return [a for a in found if id(a) in sure or a.key not in read]

    def suggestion(self, key: str) -> str | None:
        """The known key `key` is a near miss of, if one is clearly meant."""
        alias = ALIASES.get(key)
        if alias is not None and alias in self.ctx.config.schema:
            return alias
        lowered = key.lower()
        if lowered in self.ctx.config.schema:
            return lowered
        return _close_match(lowered, tuple(self.ctx.config.schema.keys))


_CUTOFF = 0.8


@functools.lru_cache(maxsize=4096)
def _close_match(word: str, known: tuple[str, ...]) -> str | None:
    """`difflib.get_close_matches(word, known, n=1, cutoff=0.8)`, asked only about the known
    keys that could reach the cutoff. A ratio is 2*M/(len(a)+len(b)) where M, the characters
    matched, is at most the shorter length and at most the characters of `word` that occur in
    the key at all (counted in C with str.translate). The bounds only drop candidates that
    difflib would drop too, so the answer is the same."""
    size = len(word)
    near, shortest, longest, any_table = _near_in_length(size, known)
    if 2 * min(size - len(word.translate(any_table)), longest) < _CUTOFF * (size + shortest):
        return None  # too few of its characters occur in any of them (`k12345`)
    candidates = [
        k
        for k, table in near
        if 2 * min(size - len(word.translate(table)), len(k)) >= _CUTOFF * (size + len(k))
    ]
    if not candidates:
        return None
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=_CUTOFF)
    return matches[0] if matches else None


@functools.lru_cache(maxsize=256)
def _near_in_length(
    size: int, known: tuple[str, ...]
) -> tuple[list[tuple[str, dict[int, None]]], int, int, dict[int, None]]:
    """The known keys whose length lets a word of `size` characters reach the cutoff (two
    strings of lengths a <= b match at most a characters: 2a/(a+b)), each with a
    str.translate table that deletes its characters; their shortest and longest length; and
    a table that deletes the characters of any of them."""
    near = [k for k in known if 2 * min(size, len(k)) >= _CUTOFF * (size + len(k))]
    tables = [(k, dict.fromkeys(map(ord, k))) for k in near]
    lengths = [len(k) for k in near] or [0]
    return tables, min(lengths), max(lengths), dict.fromkeys(map(ord, "".join(near)))


_WORD = re.compile(r"\w+")


def _never_read(text: str, assignments: list[Assignment], found: list[Assignment]) -> set[int]:
    """The ids of the `found` assignments whose key the file surely never reads: an ASCII name
    whose every occurrence as a word of the text is one of its own assignment targets (each
    Name node is one such word, so no other Name node can hold it). Lets a file of many keys
    skip walking its whole tree."""
    words = collections.Counter(_WORD.findall(text))
    targets = collections.Counter(a.target.value for a in assignments)
    return {
        id(a)
        for a in found
        if a.key.isascii() and a.target.value == a.key and words[a.key] <= targets[a.key]
    }


def _config_like(key: str) -> bool:
    return not key.startswith("_") and not key.isupper()


def _read_names(file: ConfigFile, keys: set[str]) -> set[str]:
    """The names the file reads (its Name nodes other than assignment targets, attribute
    names and keywords), `keys` among them where it reads them. Where the keys are ASCII
    names, only the top-level statements in whose text one of them occurs as a word more
    often than as the statement's own targets are walked (a Name node of a statement is
    such a word in its text, as in `_never_read`): a large file's other statements are not."""
    targets = {id(a.target) for a in file.assignments}
    names: set[str] = set()
    body = file.module.body
    words = None
    if all(key.isascii() for key in keys):
        words = statements_matching(file.source.text, file.statement_lines, len(body), _WORD, keys)
    if words is None:
        _collect_names(file.module, targets, names)
        return names
    own = collections.Counter(
        (a.index, a.target.value) for a in file.assignments if a.target.value in keys
    )
    for index, counts in words.items():
        if any(count > own[index, word] for word, count in counts.items()):
            _collect_names(body[index], targets, names)
    return names


_FIELDS: dict[type, tuple[str, ...]] = {}


def _collect_names(root: cst.CSTNode, targets: set[int], names: set[str]) -> None:
    """Add to `names` the value of every Name node under `root` but those in `targets` (ids),
    the attribute of `x.attr` and the keyword of `f(key=v)`: walked over the nodes' fields,
    without libcst's visitor (which rebuilds every node it passes)."""
    stack: list[cst.CSTNode] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            if id(node) not in targets:
                names.add(node.value)
            continue
        if isinstance(node, cst.Attribute | cst.Arg):
            stack.append(node.value)  # not `.attr`, not `key=`
            continue
        kind = type(node)
        fields = _FIELDS.get(kind)
        if fields is None:
            fields = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind))
        for field in fields:
            value = getattr(node, field)
            if isinstance(value, cst.CSTNode):
                stack.append(value)
            elif isinstance(value, tuple | list):
                stack.extend(v for v in value if isinstance(v, cst.CSTNode))


_SOURCES = {
    ValueKind.DEFAULT: "the default",
    ValueKind.FILE: "set in this file",
    ValueKind.UNKNOWN: "set where static reading cannot follow",
    ValueKind.OVERRIDE: "an override",
}


def _rename(assignment: Assignment, name: str) -> Edit:
    return Edit(assignment.target, lambda old: old.with_changes(value=name))


class UnknownKeyNearMiss(Rule):
    """An unknown top-level key that is a near miss of a known one (`n_embed = 576`,
    `learning_rat = 3e-4`, `gradient_accumulation_step = 8`) or a common alias (`lr`,
    `n_layers`, `warmup_steps`); the message says which key is meant.

    Known keys come from nanoGPT's train.py or, with the `defaults` setting or a train.py
    beside the config folder, from that file read statically, so a fork's own keys are never
    reported, nor is any name the training script reads after running the configurator. Names
    the config itself reads (helper variables such as `tokens = 2**19` used later) are not
    reported either.

    Why:
        nanoGPT's configurator `exec`s a config file in train.py's globals, so a misspelled
        key is just a new variable: no error, and the run trains with the default instead.

    Fix safety:
        The fix renames the key, which changes what the run does (the value now takes
        effect); only for an alias or a typo (at most one edit per five characters), and not
        when the right key is assigned too.
    """

    code = "GPT201"
    name = "unknown-key-near-miss"
    severity = Severity.ERROR
    summary = "unknown key that is a near miss of a known key: silently ignored"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("n_embd = 576\n"),
        Valid("n_embed = 576\nn_embd = n_embed\n"),
        Valid("my_note = 'x'\n"),
        Valid("_n_layer = 4\n"),
    )
    INVALID = (
        Invalid(
            "n_layer = 12\nn_embed = 576  # ~125M\n",
            "n_layer = 12\nn_embd = 576  # ~125M\n",
            line=2,
            col=1,
            message="n_embed is not a nanoGPT config key: did you mean n_embd?",
            unsafe_fixes=True,
        ),
        Invalid(
            "gradient_accumulation_step = 8\n",
            "gradient_accumulation_steps = 8\n",
            line=1,
            col=1,
            message="the run uses gradient_accumulation_steps=40 (the default)",
            unsafe_fixes=True,
        ),
        Invalid(
            "learning_rat = 3e-4\n",
            "learning_rate = 3e-4\n",
            line=1,
            col=1,
            message="did you mean learning_rate?",
            unsafe_fixes=True,
        ),
        Invalid(
            "lr = 1e-3\nlearning_rate = 6e-4\n",
            line=1,
            col=1,
            message="did you mean learning_rate?",
        ),
        Invalid(
            "decay_lr_at = 0\n", line=1, col=1, message="did you mean decay_lr?", unsafe_fixes=True
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        keys = _Keys(ctx)
        for assignment in keys.unknown:
            meant = keys.suggestion(assignment.key)
            if meant is None:
                continue
            current = ctx.config.get(meant)
            uses = "unknown" if current is UNKNOWN else repr(current)
            resolved = ctx.config.resolved(meant)
            source = _SOURCES[ValueKind.UNKNOWN if resolved is None else resolved.kind]
            message = (
                f"{assignment.key} is not a {_origin(ctx)} config key: did you mean {meant}?"
                f" nanoGPT runs the line and never reads the name; the run uses"
                f" {meant}={uses} ({source})"
            )
            fix = None
            if _certain(assignment.key, meant) and not ctx.file.assignments_of(meant):
                edits = tuple(_rename(a, meant) for a in ctx.file.assignments_of(assignment.key))
                fix = ProposedFix(f"rename {assignment.key} to {meant}", edits)
            yield Violation(assignment.target, message, fix)


def _certain(key: str, meant: str) -> bool:
    """Whether `key` is surely a misspelling of `meant`, as a rename fix needs: a known alias,
    another case, or a typo of at most one edit per five characters (`n_embed`, `learning_rat`);
    `resume_dir` for `resume_iter` is a near miss, but may be a name of its own."""
    if ALIASES.get(key) == meant or key.lower() == meant:
        return True
    return _edits(key.lower(), meant) <= max(1, len(meant) // 5)


def _edits(a: str, b: str) -> int:
    """The optimal-string-alignment distance: insertions, deletions, substitutions and
    transpositions of neighbours."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def _origin(ctx: LintContext) -> str:
    origin = ctx.config.schema.origin
    return "nanoGPT" if origin == "nanoGPT train.py" else origin


def _reader(ctx: LintContext) -> str:
    origin = ctx.config.schema.origin
    return "nanoGPT's train.py" if origin == "nanoGPT train.py" else origin


class DuplicateKey(Rule):
    """A key assigned twice at the top level. Assignments that build on the previous value
    (`max_iters = max_iters * 2`, `+=`) and assignments inside `if` blocks are not reported.

    Why:
        nanoGPT runs the file top to bottom, so the first value is dead, which is usually an
        edit gone wrong (two `batch_size` lines after a copy-paste).

    Fix safety:
        No fix: which line is meant is not known.
    """

    code = "GPT202"
    name = "duplicate-key"
    severity = Severity.WARNING
    summary = "key assigned twice at top level"
    VALID = (
        Valid("batch_size = 12\n"),
        Valid("max_iters = 5000\nmax_iters += 1000\n"),
        Valid("out_dir = 'out'\nout_dir = out_dir + '-ft'\n"),
        Valid("batch_size = 12\nif small:\n    batch_size = 4\n"),
    )
    INVALID = (
        Invalid(
            "batch_size = 12\nblock_size = 1024\nbatch_size = 16\n",
            line=3,
            col=1,
            message="batch_size is assigned on line 1 and again on line 3: the first value (12)"
            " is never used; the run uses 16",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        first: dict[str, Assignment] = {}
        for a in ctx.file.assignments:
            if a.conditional or a.value is None or a.operator is not None:
                continue
            earlier = first.get(a.key)
            first[a.key] = a
            if earlier is None or a.index == earlier.index or _mentions(a.value, a.key):
                continue
            earlier_line = ctx.file.position(earlier.target).start.line
            line = ctx.file.position(a.target).start.line
            before = _value_text(ctx, earlier)
            now = ctx.config.get(a.key)
            final = "unknown" if now is UNKNOWN else repr(now)
            yield Violation(
                a.target,
                f"{a.key} is assigned on line {earlier_line} and again on line {line}: the first"
                f" value ({before}) is never used; the run uses {final}",
            )


def _mentions(node: cst.BaseExpression, name: str) -> bool:
    names: set[str] = set()
    _collect_names(node, set(), names)
    return name in names


def _value_text(ctx: LintContext, assignment: Assignment) -> str:
    value = assignment.value
    text = "" if value is None else ctx.file.module.code_for_node(value).strip()
    return text if len(text) <= 40 else text[:37] + "..."


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _converted(value: Any, kind: type) -> Any:
    """`value` as `kind` when that loses nothing (0 -> 0.0, 5e3 -> 5000, 1 -> True), else
    UNKNOWN."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value) if abs(value) < 2**53 else UNKNOWN
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is bool and type(value) is int and value in (0, 1):
        return bool(value)
    if kind is int and isinstance(value, bool):
        return int(value)
    return UNKNOWN


class TypeDiffersFromDefault(Rule):
    """A known key whose value has another type than its default: `weight_decay = 0` (an int
    where the default is the float 0.1), `max_iters = 5e3` (a float where the default is an
    int). Floats where a size or count must be an int are GPT106.

    Why:
        nanoGPT's configurator applies a command-line override only if its type equals the
        current value's (`assert type(attempt) == type(globals()[key])`): after
        `weight_decay = 0`, a `--weight_decay=0.01` override fails, and after
        `max_iters = 5e3` so does `--max_iters=6000`.

    Fix safety:
        The fix rewrites a literal to the default's type when nothing is lost (`0` -> `0.0`,
        `5e3` -> `5000`, `1` -> `True`); code that computes with the value may then behave
        differently.
    """

    code = "GPT203"
    name = "type-differs-from-default"
    severity = Severity.WARNING
    summary = "value's type differs from the default's (breaks --key=value overrides)"
    fix_safety = FixSafety.UNSAFE
    VALID = (
        Valid("weight_decay = 0.0\n"),
        Valid("max_iters = 5000\n"),
        Valid("import os\nmax_iters = int(os.environ['N'])\n"),
    )
    INVALID = (
        Invalid(
            "weight_decay = 0\n",
            "weight_decay = 0.0\n",
            line=1,
            col=1,
            message="weight_decay = 0 is an int, but the default (0.1) is a float:"
            " `--weight_decay=0.1` would fail",
            unsafe_fixes=True,
        ),
        Invalid("max_iters = 5e3\n", "max_iters = 5000\n", line=1, col=1, unsafe_fixes=True),
        Invalid("compile = 0\n", "compile = False\n", line=1, col=1, unsafe_fixes=True),
        Invalid("learning_rate = '6e-4'\n", line=1, col=1, message="is a str"),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        for key, spec in ctx.config.schema.keys.items():
            resolved = ctx.config.resolved(key)
            if resolved is None or resolved.kind != ValueKind.FILE or resolved.assignment is None:
                continue
            value = resolved.value
            if spec.type is None or value is UNKNOWN or type(value) is spec.type:
                continue
            if problem(key, value) is not None:
                continue  # GPT106 reports it
            default = "" if spec.default is UNKNOWN else f" ({spec.default!r})"
            example = _override_example(spec.default, spec.type)
            message = (
                f"{key} = {value!r} is {_a(type(value).__name__)}, but the default{default} is"
                f" {_a(spec.type.__name__)}: `--{key}={example}` would fail the configurator's"
                " type assertion"
            )
            if ctx.config.schema is not NANOGPT_SCHEMA:
                message += f" (defaults: {ctx.config.schema.origin})"
            fix = self._fix(resolved.assignment, value, spec.type)
            if fix is not None:
                message += f"; write {fix.description.removeprefix('write ')}"
            yield Violation(resolved.assignment.target, message, fix)

    def _fix(self, assignment: Assignment, value: Any, kind: type) -> ProposedFix | None:
        new = _converted(value, kind)
        literal = assignment.value
        literal_types = cst.Integer | cst.Float | cst.Name
        if new is UNKNOWN or not assignment.is_plain or not isinstance(literal, literal_types):
            return None
        return ProposedFix(f"write {new!r}", (Edit(literal, _as_literal(new)),))


def _as_literal(value: Any) -> Rewrite:
    """A rewrite of a literal expression (`0`, `5e3`) to read back as `value`."""

    def rewrite(old: cst.CSTNode) -> cst.CSTNode:
        return replace_literal(old, value) if isinstance(old, cst.BaseExpression) else old

    return rewrite


def _override_example(default: Any, kind: type) -> str:
    return "..." if default is UNKNOWN else str(default)


class UnknownKey(Rule):
    """A top-level key that neither nanoGPT's train.py (or the fork's, with the `defaults`
    setting) nor a near miss explains. Off by default, since configs legitimately hold notes
    and helper values; turn it on with `--select GPT204` to audit a config folder. Names the
    file reads itself, `_private` and `CONSTANT` names are not reported.

    Why:
        The configurator ignores the key: the line has no effect on the run.

    Fix safety:
        No fix: the key may be a note, or meant for another training script.
    """

    code = "GPT204"
    name = "unknown-key"
    severity = Severity.INFO
    summary = "unknown key, no near miss"
    default_enabled = False
    VALID = (Valid("batch_size = 8\n"), Valid("tokens = 2**19\nbatch_size = tokens // 1024\n"))
    INVALID = (
        Invalid(
            "use_rotary = True\n",
            line=1,
            col=1,
            message="use_rotary is not a nanoGPT config key: nanoGPT's train.py never reads it",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        keys = _Keys(ctx)
        for assignment in keys.unknown:
            if keys.suggestion(assignment.key) is None:
                yield Violation(
                    assignment.target,
                    f"{assignment.key} is not a {_origin(ctx)} config key: {_reader(ctx)} never"
                    " reads it, so this line has no effect on the run",
                )


class ModelKeyNotRead(Rule):
    """A model key that train.py never reads from a config: `vocab_size = 65`, or a
    grouped-query key such as `n_kv_head = 4`. With a fork whose train.py has the key (the
    `defaults` setting), it is not reported.

    Why:
        nanoGPT's train.py builds the model from its own globals: n_layer, n_head, n_embd,
        block_size, bias, dropout, and a vocab_size it takes from data/<dataset>/meta.pkl
        (else 50304). The key is a model setting, but not one train.py passes on: the line
        changes nothing.

    Fix safety:
        No fix: whether to drop the line or change the training script is the author's call.
    """

    code = "GPT205"
    name = "model-key-not-read"
    severity = Severity.WARNING
    summary = "a model key train.py never reads from a config (vocab_size in plain nanoGPT)"
    VALID = (Valid("n_layer = 6\n"), Valid("cfg = GPTConfig(vocab_size=65)\n"))
    INVALID = (
        Invalid(
            "vocab_size = 65\n",
            line=1,
            col=1,
            message="vocab_size is a model setting that nanoGPT's train.py never reads from a"
            " config: the run uses 50304",
        ),
        Invalid("n_kv_head = 4\n", line=1, col=1, message="grouped-query attention"),
        Invalid(
            "init_from = 'gpt2'\nvocab_size = 50304\n",
            line=2,
            col=1,
            message="the run uses 50257 (gpt2's checkpoint)",
        ),
    )

    def check(self, ctx: LintContext) -> Iterator[Violation]:
        seen = set()
        for a in ctx.file.assignments:
            if a.key not in MODEL_ONLY_KEYS or ctx.config.schema.reads_name(a.key) or a.key in seen:
                continue
            seen.add(a.key)
            if a.key == "vocab_size" and ctx.model is not None:
                effect = f"the run uses {ctx.model.shape.vocab_size} ({ctx.model.vocab_from})"
            elif a.key == "vocab_size":
                effect = "the run takes it from the checkpoint"
            elif a.key in (ctx.gptconfig_defaults or {}):  # the fork's model has the field
                default = (ctx.gptconfig_defaults or {})[a.key]
                effect = f"its model is built with its GPTConfig's default, {a.key}={default!r}"
            else:
                effect = "nanoGPT's attention has no grouped-query attention"
            yield Violation(
                a.target,
                f"{a.key} is a model setting that {_reader(ctx)} never reads from a"
                f" config: {effect}",
            )


RULES = [UnknownKeyNearMiss, DuplicateKey, TypeDiffersFromDefault, UnknownKey, ModelKeyNotRead]
