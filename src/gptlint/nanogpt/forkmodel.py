"""What a fork's training script and model.py do that nanoGPT's GPT does not, where it changes
the memory of a training step: read statically, each with its file and line, so that the
estimate (which models nanoGPT's GPT) says it cannot tell instead of answering for nanoGPT."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeGuard

_WRAPPERS = frozenset({"compile", "DDP", "DistributedDataParallel"})
"""Calls that wrap the model train.py already built, keeping it."""


def model_call(name: str, receiver: str | None, takes_model: bool = False) -> str:
    """What `model = receiver.name(...)` (or `name(...)`; `takes_model`: `model` is one of its
    arguments) makes of train.py's model: "gpt", nanoGPT's GPT (`GPT(...)`,
    `GPT.from_pretrained(...)`); "wraps", the model already built, as it is
    (`torch.compile(model)`, `DDP(model)`, `model.to(device)`); "engine", the model already
    built inside another library's engine (`deepspeed.initialize(model=model)`, `FSDP(model)`),
    which keeps its parameters, gradients and optimizer state its own way; else "other"."""
    if name == "GPT" or (name == "from_pretrained" and receiver == "GPT"):
        return "gpt"
    if name in _WRAPPERS or receiver == "model":
        return "wraps"
    return "engine" if takes_model else "other"


_BEHIND_AN_IF = "(behind an `if` static reading cannot evaluate)"

MAY_BUILD = f"may build {_BEHIND_AN_IF}"
"""What a finding says of a model or optimizer train.py builds behind a test it cannot read."""


def other_model_said(
    train_py: str | Path, line: int, call: str, may: bool = False, engine: bool = False
) -> str:
    """`train.py:LINE builds its model with `call(...)`, not nanoGPT's GPT` (or `MAY_BUILD`);
    with `engine` (`model_call`), `train.py:LINE wraps its model in `call(...)`, whose memory
    gptlint does not model` (or `may wrap`, behind such a test)."""
    if engine:
        wraps = f"may wrap {_BEHIND_AN_IF}" if may else "wraps"
        return (
            f"{train_py}:{line} {wraps} its model in `{call}(...)`, whose memory gptlint does"
            " not model (nanoGPT's train.py trains the model itself, or in DDP)"
        )
    builds = MAY_BUILD if may else "builds"
    return f"{train_py}:{line} {builds} its model with `{call}(...)`, not nanoGPT's GPT"


def other_models(train_py: Path, tree: ast.Module) -> tuple[tuple[int, str], ...]:
    """Each place the training script builds its `model` from something other than nanoGPT's
    GPT (`model = Mamba(config)`; `model_call`), with its line and said with the line. Read
    anywhere in the script, whatever `if` it is under (`rewrites.other_model` reads which one
    a config takes)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
            continue
        if not any(_names_model(t) for t in node.targets):
            continue
        func = node.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        receiver = None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            receiver = func.value.id
        call = node.value
        takes = any(_is_model(a) for a in (*call.args, *(k.value for k in call.keywords)))
        kind = None if name is None else model_call(name, receiver, takes)
        if kind not in ("other", "engine"):
            continue
        said = other_model_said(train_py, node.lineno, ast.unparse(func), engine=kind == "engine")
        found.append((node.lineno, said))
    return tuple(sorted(found))


def _is_model(node: ast.expr) -> bool:
    """`model`, the name train.py keeps its model under."""
    return isinstance(node, ast.Name) and node.id == "model"


def _names_model(target: ast.expr) -> bool:
    """`model = ...`, or `model, config = ...`."""
    if isinstance(target, ast.Tuple | ast.List) and target.elts:
        target = target.elts[0]
    return isinstance(target, ast.Name) and target.id == "model"


@dataclass(frozen=True)
class ModelModule:
    """Where a training script takes its `GPT` from: `from MODULE import GPT` at `line`, and
    the file of the project that module is, found from the script's folder as the run's
    first import path finds it (`path`; None: no file beside the script is that module)."""

    line: int
    module: str
    path: Path | None

    def unread(self, train_py: str | Path) -> str:
        """What a finding says where `path` is None."""
        wanted = "/".join(self.module.split(".")) + ".py"
        return (
            f"{train_py}:{self.line} imports GPT from `{self.module}`, but there is no"
            f" {wanted} beside it: the model it builds cannot be read"
        )


def gpt_imports(tree: ast.Module) -> tuple[tuple[int, str], ...]:
    """Each import a training script (of tree `tree`) takes its `GPT` from, as its line and the
    module's dotted name, in line order: `from model import GPTConfig, GPT` in nanoGPT, `from
    models.gpt import GPT` in a fork that moved it; a module imported whole whose `GPT` the
    script names (`import model` ... `model.GPT(...)`, `import models.gpt as gpt` ...
    `gpt.GPT`, `from models import gpt` ... `gpt.GPT`); `try:` one, `except ImportError:`
    another."""
    named = {  # `net` of `net.GPT`; an import binds no name of a call's or subscript's text
        ast.unparse(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "GPT"
    }
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for alias in node.names:
                bound = alias.asname or alias.name
                if bound == "GPT":
                    found.add((node.lineno, node.module))
                elif bound in named:
                    found.add((node.lineno, f"{node.module}.{alias.name}"))
        elif isinstance(node, ast.Import):
            found |= {
                (node.lineno, alias.name)
                for alias in node.names
                if (alias.asname or alias.name) in named
            }
    return tuple(sorted(found))


def model_module(train_py: Path, imports: tuple[tuple[int, str], ...]) -> ModelModule | None:
    """Of the training script at `train_py`'s `imports` (`gpt_imports`), the first whose
    module is a file of the project, else the first; None where there is none. A module is
    looked for from the script's folder, then from the folder it runs from (`run_folder`:
    `python -m src.train` imports from there)."""
    folders = dict.fromkeys((train_py.parent, run_folder(train_py)))
    found = [
        ModelModule(line, module, next(_files_of(folders, module), None))
        for line, module in imports
    ]
    return next((m for m in found if m.path is not None), found[0] if found else None)


def _files_of(folders: Iterable[Path], dotted: str) -> Iterator[Path]:
    """`module_file` of `dotted` from each of `folders` that has it."""
    return (f for f in (module_file(folder, dotted) for folder in folders) if f is not None)


_CONFIGURATOR_PATH = re.compile(rb"""['"]([^'"\n]*configurator\.py)['"]""")
"""A string naming a configurator.py file (`exec(open('src/configurator.py').read())`)."""


@lru_cache(maxsize=64)
def run_folder(train_py: Path) -> Path:
    """The folder a training script runs from: its own; or, where the configurator it opens
    by a relative path is no file from its own folder but one from a folder above it
    (`src/train.py` opening 'src/configurator.py', or 'configurator.py' of the folder above),
    that folder: the script is run from there (`python src/train.py config/x.py`)."""
    own = train_py.parent
    try:
        text = train_py.read_bytes()
    except OSError:
        return own
    for match in _CONFIGURATOR_PATH.finditer(text):
        named = match.group(1).decode("utf-8", "replace")
        if os.path.isabs(named) or _is_file(own / named):
            return own
        above = next((f for f in own.parents if _is_file(f / named)), None)
        if above is not None:
            return above
    return own


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; False where it cannot be looked at (a name too long for the
    file system, a NUL byte, a folder not readable)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def module_file(folder: Path, dotted: str) -> Path | None:
    """The file `import dotted` loads with `folder` first on the import path: at each step a
    package (a folder with `__init__.py`) before a module (`name.py`) before a plain folder
    (a namespace package, which holds no code of its own); None where there is none, or
    where a name cannot be looked at (too long for the file system, a folder not readable)."""
    try:
        return _found_file(folder, dotted.split("."))
    except OSError:
        return None


def _found_file(folder: Path, parts: list[str]) -> Path | None:
    """`module_file` of the module whose dotted name is `parts`."""
    here = folder
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        package, module = here / part, here / f"{part}.py"
        if (package / "__init__.py").is_file():
            if last:
                return package / "__init__.py"
            here = package
        elif module.is_file():
            return module if last else None
        elif package.is_dir() and not last:
            here = package
        else:
            return None
    return None


def parse_model_py(model_py: Path) -> ast.Module | None:
    """CPython's tree of the fork's model.py, read once for the readings below; None where it
    is missing, unreadable or does not parse."""
    try:
        return ast.parse(model_py.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def model_differences(model_py: Path, tree: ast.Module) -> tuple[str, ...]:
    """What the fork's model.py (`model_py`, of tree `tree`) does that changes a training
    step's memory from nanoGPT's GPT in a way the estimate does not model: a tanh GELU
    (written out in Python, each op keeps its own activation; or `approximate='tanh'`), an
    lm_head not tied to the token embedding. Attention the model computes itself
    (`self.flash = False`) is modelled: `program.manual_attention` reads it."""
    found: list[str] = []
    called = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    for node in ast.walk(tree):
        if _tanh_gelu(node, called):
            found.append(f"{model_py}:{node.lineno} uses a tanh GELU")
    head = _untied_head(tree)
    if head is not None:
        found.append(
            f"{model_py}:{head} does not tie lm_head's weight to the token embedding's as"
            " nanoGPT does (`wte.weight = lm_head.weight`): vocab_size x n_embd more parameters,"
            " gradients and optimizer state"
        )
    return tuple(dict.fromkeys(found))


def _untied_head(tree: ast.Module) -> int | None:
    """The line of `self.lm_head = ...` where no assignment of model.py ties a `.weight` of
    lm_head to another module's (nanoGPT's `self.transformer.wte.weight =
    self.lm_head.weight`, either way round); None where it ties one or has no lm_head."""
    heads: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        targets = [ast.unparse(t) for t in node.targets]
        value = ast.unparse(node.value)
        weights = any(t.endswith(".weight") for t in targets) and value.endswith(".weight")
        if weights and ("lm_head" in value or any("lm_head" in t for t in targets)):
            return None
        if "self.lm_head" in targets:
            heads.append(node.lineno)
    return min(heads) if heads else None


def model_kv_default(
    tree: ast.Module, passed: frozenset[str], keys: tuple[str, ...]
) -> tuple[str, int, int] | None:
    """The key/value-head count the model's own `GPTConfig` (model.py, of tree `tree`) builds
    with where train.py does not pass it: one of `keys` (`n_kv_head` ...) not in `passed`, a
    whole number by default; the key, that number and its line. None where there is none."""
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef) or cls.name != "GPTConfig":
            continue
        for field in cls.body:
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and field.target.id in keys
                and field.target.id not in passed
                and isinstance(field.value, ast.Constant)
                and type(field.value.value) is int
                and field.value.value > 0
            ):
                return field.target.id, field.value.value, field.lineno
    return None


def _tanh_gelu(node: ast.AST, called: set[str]) -> TypeGuard[ast.FunctionDef | ast.keyword]:
    """`def new_gelu(x): ... torch.tanh(...)` called by name, or `GELU(approximate='tanh')`."""
    if isinstance(node, ast.FunctionDef) and "gelu" in node.name.lower() and node.name in called:
        return any(
            isinstance(n, ast.Attribute | ast.Name)
            and (getattr(n, "attr", None) or getattr(n, "id", None)) == "tanh"
            for n in ast.walk(node)
        )
    if isinstance(node, ast.keyword) and node.arg == "approximate":
        return isinstance(node.value, ast.Constant) and node.value.value == "tanh"
    return False


def init_from_branches(tree: ast.Module) -> tuple[str, ...]:
    """The `init_from` values the training script tests for beyond nanoGPT's own:
    `init_from == 'finetune'`, `init_from in ('a', 'b')`, and prefixes of
    `init_from.startswith('lora')` (with a trailing `*`)."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and _names_init_from(node):
            for operand in (node.left, *node.comparators):
                found += _strings(operand)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "startswith"
            and _is_init_from(node.func.value)
        ):
            found += [f"{prefix}*" for arg in node.args for prefix in _strings(arg)]
    return tuple(b for b in dict.fromkeys(found) if not b.startswith(_NANOGPT_INIT_FROM))


_NANOGPT_INIT_FROM = ("scratch", "resume", "gpt2")
"""What nanoGPT's own branches handle (and `run.derive_model` models): not a fork's."""


def _names_init_from(node: ast.Compare) -> bool:
    return any(_is_init_from(operand) for operand in (node.left, *node.comparators))


def _is_init_from(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "init_from"


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    return []


def takes_branch(value: str, branches: tuple[str, ...]) -> bool:
    """Whether `init_from=value` is one of the `branches` (`lora*` matches `lora_r8`)."""
    return any(value.startswith(b[:-1]) if b.endswith("*") else value == b for b in branches)


def sequence_key(tree: ast.Module) -> str | None:
    """The global that sets the sequence length train.py feeds the model, where its batches
    are slices `data[i:i+NAME]` of another name than block_size (a fork that keeps the
    context length in `seq_len` and means something else by block_size); None otherwise."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Slice) or not isinstance(node.upper, ast.BinOp):
            continue
        upper = node.upper
        if (
            isinstance(upper.op, ast.Add)
            and isinstance(node.lower, ast.Name)
            and isinstance(upper.left, ast.Name)
            and upper.left.id == node.lower.id
            and isinstance(upper.right, ast.Name)
        ):
            name = upper.right.id
            return None if name == "block_size" else name
    return None


PRETRAINED_OVERRIDES = ("dropout",)
"""What nanoGPT's train.py passes to `GPT.from_pretrained`:
`override_args = dict(dropout=dropout)`."""


def pretrained_overrides(tree: ast.Module) -> tuple[tuple[str, ...], int] | None:
    """The config keys the training script passes to `from_pretrained(name, overrides)`, with
    the line of the call: the keywords of a `dict(...)` or the keys of a `{...}` literal given
    there or assigned to the name given there (the last assignment before the call). None when
    no call is found or what it passes cannot be read statically."""
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "from_pretrained"
    ]
    if not calls:
        return None
    found: list[str] = []
    for call in calls:
        given = call.args[1] if len(call.args) > 1 else None
        given = next((k.value for k in call.keywords if k.arg == "override_args"), given)
        if given is None:
            continue
        keys = _dict_keys(_resolved(given, tree, call.lineno))
        if keys is None:
            return None
        found += [k for k in keys if k not in found]
    return tuple(found), min(call.lineno for call in calls)


def _resolved(node: ast.expr, tree: ast.Module, line: int) -> ast.expr | None:
    """`node`, or for a name the value of its last assignment before `line`."""
    if not isinstance(node, ast.Name):
        return node
    values = [
        (a.lineno, a.value)
        for a in ast.walk(tree)
        if isinstance(a, ast.Assign)
        and a.lineno < line
        and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)
    ]
    return max(values, key=lambda v: v[0])[1] if values else None


def _dict_keys(node: ast.expr | None) -> list[str] | None:
    """The keys of `dict(a=..., b=...)` or `{'a': ..., 'b': ...}`; None for anything else."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and all(k.arg is not None for k in node.keywords)
    ):
        return [str(k.arg) for k in node.keywords]
    if isinstance(node, ast.Dict) and all(
        isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys
    ):
        return [str(k.value) for k in node.keys if isinstance(k, ast.Constant)]
    return None


Term = tuple[str, Any]
"""An argument as train.py writes it: `("name", "weight_decay")` (a global), `("value", 0.1)`
(a constant), `("tuple", (terms ...))`, or `("unread", "source text")` (anything else)."""


@dataclass(frozen=True)
class OptimizerCall:
    """The arguments of train.py's `model.configure_optimizers(...)`, at `line`."""

    positional: tuple[Term, ...]
    keywords: tuple[tuple[str, Term], ...]
    line: int
    train_mode: bool = False
    """train.py calls `train()` on an optimizer (`optimizer.train()`, `opt.train()`: a name
    with `opt` in it), as a schedule-free optimizer needs before its first step."""


NANOGPT_OPTIMIZER_CALL = OptimizerCall(
    (
        ("name", "weight_decay"),
        ("name", "learning_rate"),
        ("tuple", (("name", "beta1"), ("name", "beta2"))),
        ("name", "device_type"),
    ),
    (),
    0,
)
"""nanoGPT's `model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2),
device_type)`."""


def optimizer_call(tree: ast.Module) -> OptimizerCall | None:
    """The first `configure_optimizers(...)` call of the training script (by line), its
    arguments read as `Term`s; None where it has none (it builds its optimizer otherwise)."""
    calls = sorted(
        (
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "configure_optimizers"
        ),
        key=lambda node: (node.lineno, node.col_offset),
    )
    if not calls:
        return None
    call = calls[0]
    keywords = tuple(
        (k.arg, _term(k.value)) if k.arg else ("**", _unread(k.value)) for k in call.keywords
    )
    train_mode = any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "train"
        and isinstance(node.func.value, ast.Name)
        and "opt" in node.func.value.id.lower()
        for node in ast.walk(tree)
    )
    return OptimizerCall(tuple(_term(a) for a in call.args), keywords, call.lineno, train_mode)


def _term(node: ast.expr) -> Term:
    if isinstance(node, ast.Name):
        return ("name", node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
        return ("value", node.value)
    if isinstance(node, ast.Constant) and node.value is None:
        return ("value", None)
    if isinstance(node, ast.Tuple):
        return ("tuple", tuple(_term(e) for e in node.elts))
    return _unread(node)


def _unread(node: ast.expr) -> Term:
    return ("unread", ast.unparse(node))


def fixed_vocab(tree: ast.Module) -> tuple[int, int] | None:
    """The vocab size the training script gives its model whatever the dataset, with the line:
    a whole number it assigns to `model_args['vocab_size']` or passes as `vocab_size=` in
    `model_args = dict(...)` (every one it gives, None aside, that number). None where it
    takes the size from the data (nanoGPT's `meta_vocab_size if ... else 50304`), from a
    key, or gives none."""
    given: list[tuple[ast.expr, int]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id == "model_args"
                and isinstance(target.slice, ast.Constant)
                and target.slice.value == "vocab_size"
            ):
                given.append((node.value, node.lineno))
            elif (
                isinstance(target, ast.Name)
                and target.id == "model_args"
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "dict"
            ):
                given += [
                    (k.value, node.lineno) for k in node.value.keywords if k.arg == "vocab_size"
                ]
    values = [
        (v, line) for v, line in given if not (isinstance(v, ast.Constant) and v.value is None)
    ]
    numbers = {v.value for v, _ in values if isinstance(v, ast.Constant) and type(v.value) is int}
    if not values or len(numbers) != 1:
        return None
    if not all(isinstance(v, ast.Constant) and type(v.value) is int for v, _ in values):
        return None
    return numbers.pop(), max(line for _, line in values)


_ADAM_STATE = frozenset({"AdamW", "Adam"})
"""Optimizers whose state is AdamW's (two float32 moments a parameter): what the estimate
counts."""


@dataclass(frozen=True)
class OptimizerBuild:
    """An optimizer whose state is not AdamW's that the model's `configure_optimizers` builds:
    `name(...)` at `line`, under `conditions` (each enclosing `if` test's source, and whether
    the call is in its body (True) or its `else`)."""

    name: str
    line: int
    conditions: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class ForkOptimizers:
    """The `configure_optimizers` of a fork's model.py (`path`) that builds optimizers other
    than AdamW: its parameters after `self`, their constant defaults, and those builds."""

    path: str
    parameters: tuple[str, ...]
    defaults: tuple[tuple[str, Any], ...]
    builds: tuple[OptimizerBuild, ...]


def fork_optimizers(model_py: Path, tree: ast.Module) -> ForkOptimizers | None:
    """The optimizers other than AdamW (or Adam, whose state is the same) the model's
    `configure_optimizers` in `model_py` (of tree `tree`) builds: `Muon(...)`,
    `torch.optim.SGD(...)`, `bnb.optim.AdamW8bit(...)` (a call of a capitalised name, not an
    exception's), each with the `if` tests it is under; None where it builds none."""
    methods = [
        node
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef)
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name == "configure_optimizers"
    ]
    if not methods:
        return None
    method = methods[0]
    builds = tuple(_builds(method.body, ()))
    if not builds:
        return None
    args = method.args
    positional = args.posonlyargs + args.args
    given = positional[len(positional) - len(args.defaults) :]
    pairs = [
        *zip(given, args.defaults, strict=True),
        *zip(args.kwonlyargs, args.kw_defaults, strict=True),
    ]
    defaults = tuple((a.arg, d.value) for a, d in pairs if isinstance(d, ast.Constant))
    names = tuple(a.arg for a in [*positional[1:], *args.kwonlyargs])  # after self
    return ForkOptimizers(str(model_py), names, defaults, builds)


def _builds(
    body: list[ast.stmt], conditions: tuple[tuple[str, bool], ...]
) -> Iterator[OptimizerBuild]:
    """The optimizer builds of `body` (`fork_optimizers`), under `conditions`: an `if`'s
    test, and a `match` case's (`_case_test`) with the earlier cases' failed. What follows an
    `if` one of whose branches returns (`if not use_muon: return AdamW(...)`) is under the
    other branch's truth."""
    for statement in body:
        if isinstance(statement, ast.If):
            test = ast.unparse(statement.test)
            yield from _builds(statement.body, (*conditions, (test, True)))
            yield from _builds(statement.orelse, (*conditions, (test, False)))
            leaves, otherwise = _leaves(statement.body), _leaves(statement.orelse)
            if leaves != otherwise:  # one branch returns: the rest runs under the other
                conditions = (*conditions, (test, otherwise))
            continue
        if isinstance(statement, ast.Match):
            subject = ast.unparse(statement.subject)
            earlier: tuple[tuple[str, bool], ...] = ()
            for case in statement.cases:
                test = _case_test(subject, case)
                yield from _builds(case.body, (*conditions, *earlier, (test, True)))
                earlier += ((test, False),)
            continue
        if isinstance(statement, ast.Raise):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if _optimizer_class(name):
                    yield OptimizerBuild(name, node.lineno, conditions)


def _leaves(body: list[ast.stmt]) -> bool:
    """Whether `body` ends by returning (what follows it never runs after it). One that
    raises is not counted: the run stops there, and a run that goes on builds what follows."""
    return bool(body) and isinstance(body[-1], ast.Return)


def _case_test(subject: str, case: ast.match_case) -> str:
    """A `match` case as an `if` test on `subject` (source): a value or an `|` of values is a
    comparison, a name or `_` matches anything, its guard is `and`-ed; any other pattern is a
    test `condition_holds` cannot tell."""

    def test(pattern: ast.pattern) -> str:
        if isinstance(pattern, ast.MatchValue):
            return f"{subject} == {ast.unparse(pattern.value)}"
        if isinstance(pattern, ast.MatchSingleton):
            return f"{subject} is {pattern.value!r}"
        if isinstance(pattern, ast.MatchOr):
            return " or ".join(f"({test(p)})" for p in pattern.patterns)
        if isinstance(pattern, ast.MatchAs) and pattern.pattern is None:
            return "True"
        return f"{subject} matches {ast.unparse(pattern)}"  # not Python: never told

    tested = test(case.pattern)
    return tested if case.guard is None else f"({tested}) and ({ast.unparse(case.guard)})"


def _optimizer_class(name: str) -> bool:
    """A capitalised name other than AdamW's, an exception's or a warning's."""
    return (
        name[:1].isupper()
        and name not in _ADAM_STATE
        and not name.endswith(("Error", "Exception", "Warning"))
    )


def condition_holds(test: str, env: dict[str, Any]) -> bool | None:
    """Whether `if test:` (source) takes its body with the names of `env` (a value, or
    `UNKNOWN` from `gptlint.facts.values`): True, False, or None where it cannot be told (a
    name not in `env`, or an expression beyond names, constants, comparisons, `not`, `and`
    and `or`)."""
    try:
        expression = ast.parse(test, mode="eval").body
        value = _value(expression, env)
    except (SyntaxError, ValueError, RecursionError, _Untold, TypeError):
        return None
    return bool(value)


class _Untold(Exception):
    pass


def _value(node: ast.expr, env: dict[str, Any]) -> Any:
    from gptlint.facts.values import UNKNOWN

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env or env[node.id] is UNKNOWN:
            raise _Untold()
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _value(node.operand, env)
    if isinstance(node, ast.BoolOp):
        values = [_value(v, env) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return tuple(_value(e, env) for e in node.elts)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _value(node.left, env), _value(node.comparators[0], env)
        compare = _COMPARISONS.get(type(node.ops[0]))
        if compare is not None:
            return compare(left, right)
    raise _Untold()


_COMPARISONS: dict[type, Any] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}


NANOGPT_DATA_FOLDER: Term = ("value", "data")
"""nanoGPT's `data_dir = os.path.join('data', dataset)`: the folder of each dataset's folder."""


def data_folder(tree: ast.Module) -> tuple[int, Term] | None:
    """The folder train.py reads `<dataset>/meta.pkl` under, from its top-level `data_dir =
    os.path.join(FOLDER, dataset)` (`data_dir = dataset`: the empty folder), with the line:
    FOLDER as a `Term` (`("value", "data")`: nanoGPT's; `("name", "data_root")`: a global;
    `("unread", source)`: anything else, the whole expression). None where train.py assigns
    no `data_dir` at its top level."""
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "data_dir"
        ):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id == "dataset":
            return node.lineno, ("value", "")
        if (
            isinstance(value, ast.Call)
            and ast.unparse(value.func) == "os.path.join"
            and len(value.args) == 2
            and not value.keywords
            and isinstance(value.args[1], ast.Name)
            and value.args[1].id == "dataset"
        ):
            kind, held = term = _term(value.args[0])
            if kind == "name" or (kind == "value" and isinstance(held, str)):
                return node.lineno, term
        return node.lineno, _unread(value)
    return None
