"""The keys a config may set and their defaults: nanoGPT's train.py, or a fork's, read
statically, and which train.py applies to a config (`schema_for`)."""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import libcst as cst

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.values import UNKNOWN
from gptlint.nanogpt.configfile import parse_config
from gptlint.nanogpt.evaluate import evaluate
from gptlint.nanogpt.forkmodel import (
    NANOGPT_OPTIMIZER_CALL,
    PRETRAINED_OVERRIDES,
    ForkOptimizers,
    OptimizerCall,
    Term,
    data_folder,
    fixed_vocab,
    fork_optimizers,
    gpt_imports,
    init_from_branches,
    model_differences,
    model_kv_default,
    model_module,
    optimizer_call,
    other_models,
    parse_model_py,
    pretrained_overrides,
    run_folder,
    sequence_key,
)
from gptlint.nanogpt.machine import target_calls
from gptlint.nanogpt.program import (
    NANOGPT_LOOP,
    Loop,
    parse_python,
    read_loop,
    training_forward,
)
from gptlint.nanogpt.rewrites import Rewrite
from gptlint.nanogpt.rewrites import collect as collect_rewrites
from gptlint.nanogpt.scriptnames import names_read_after
from gptlint.text.decode import SourceError, read_source

NANOGPT_DEFAULTS: dict[str, Any] = {
    "out_dir": "out",
    "eval_interval": 2000,
    "log_interval": 1,
    "eval_iters": 200,
    "eval_only": False,
    "always_save_checkpoint": True,
    "init_from": "scratch",
    "wandb_log": False,
    "wandb_project": "owt",
    "wandb_run_name": "gpt2",
    "dataset": "openwebtext",
    "gradient_accumulation_steps": 5 * 8,
    "batch_size": 12,
    "block_size": 1024,
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "dropout": 0.0,
    "bias": False,
    "learning_rate": 6e-4,
    "max_iters": 600000,
    "weight_decay": 1e-1,
    "beta1": 0.9,
    "beta2": 0.95,
    "grad_clip": 1.0,
    "decay_lr": True,
    "warmup_iters": 2000,
    "lr_decay_iters": 600000,
    "min_lr": 6e-5,
    "backend": "nccl",
    "device": "cuda",
    # train.py: 'bfloat16' if the GPU supports it else 'float16'; the default GPU has bf16.
    "dtype": "bfloat16",
    "compile": True,
}

# nanoGPT model.py's `GPTConfig` dataclass defaults, used for keywords a GPTConfig(...) omits.
GPTCONFIG_DEFAULTS: dict[str, Any] = {
    "block_size": 1024,
    "vocab_size": 50304,
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "dropout": 0.0,
    "bias": True,
}


def gptconfig_defaults(model_py: Path) -> dict[str, Any]:
    """The field defaults of `class GPTConfig` in a fork's model.py, read statically (fields
    whose default is a plain literal); nanoGPT's when the file or the class is missing."""
    return dict(_gptconfig_defaults(model_py.resolve()))


@lru_cache(maxsize=32)
def _gptconfig_defaults(model_py: Path) -> tuple[tuple[str, Any], ...]:
    try:
        module = cst.parse_module(model_py.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError, RecursionError):
        return tuple(GPTCONFIG_DEFAULTS.items())
    for statement in module.body:
        if isinstance(statement, cst.ClassDef) and statement.name.value == "GPTConfig":
            fields = dict(GPTCONFIG_DEFAULTS)
            for line in statement.body.body:
                if not isinstance(line, cst.SimpleStatementLine):
                    continue  # a method (__post_init__ ...), a nested class: no field
                for small in line.body:
                    if (
                        isinstance(small, cst.AnnAssign)
                        and isinstance(small.target, cst.Name)
                        and small.value is not None
                    ):
                        fields[small.target.value] = evaluate(small.value, {})
            return tuple(fields.items())
    return tuple(GPTCONFIG_DEFAULTS.items())


# A scratch run without data/<dataset>/meta.pkl: GPT-2's 50257 padded up to a multiple of 64.
DEFAULT_VOCAB_SIZE = 50304

_CONFIG_TYPES = (int, float, bool, str)


NANOGPT_MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")
"""What nanoGPT's train.py passes to `GPTConfig` (its `model_args`)."""


class SchemaError(Exception):
    """A `defaults` train.py that cannot be read; the message names the file and line."""


class NotNanoGPTError(SchemaError):
    """The project's training script does not run nanoGPT's configurator: nothing about its
    configs can be judged by nanoGPT's rules."""


@dataclass(frozen=True)
class KeySpec:
    """One config key: its default (or UNKNOWN) and the type a config value must keep."""

    name: str
    default: Any
    type: type | None
    line: int | None = None
    machine: str | None = None  # the GPU profile a machine-dependent default was answered for


@dataclass(frozen=True)
class Schema:
    """The known keys and where their defaults come from (`origin`, for messages)."""

    keys: dict[str, KeySpec]
    origin: str
    splits_accumulation: bool = True
    """Whether train.py divides gradient_accumulation_steps among the DDP processes (after
    asserting that it can), as nanoGPT does; older forks keep it per process."""
    calls_compile: bool = True
    """For a train.py without a `compile` key: whether it calls `torch.compile` anyway."""
    model_args: tuple[str, ...] = NANOGPT_MODEL_ARGS
    """The keywords of train.py's `model_args = dict(...)`: what it passes to `GPTConfig`."""
    other_models: tuple[tuple[int, str], ...] = ()
    """Where train.py builds its model from a class other than nanoGPT's GPT, by line
    (`forkmodel.other_models`); which of them a config takes: `rewrites.other_model`."""
    model_differences: tuple[str, ...] = ()
    """What the model file of train.py (`model_py`) does that changes memory from nanoGPT's
    GPT."""
    init_from_branches: tuple[str, ...] = ()
    """The `init_from` values train.py tests for (`forkmodel.init_from_branches`)."""
    pretrained_passes: tuple[tuple[str, ...], int] | None = (PRETRAINED_OVERRIDES, 0)
    """The config keys train.py passes to `from_pretrained` and the line of that call (0:
    nanoGPT's train.py); None where that cannot be read (`forkmodel.pretrained_overrides`)."""
    sequence_key: str | None = None
    """The key whose value is the sequence length train.py feeds the model, where that is not
    block_size (`forkmodel.sequence_key`)."""
    rewrites: tuple[Rewrite, ...] = ()
    """What train.py assigns to its keys after the configurator ran (`gptlint.nanogpt.rewrites`)."""
    ddp_flags: frozenset[str] = frozenset()
    """The names train.py sets to whether it runs under DDP (`ddp = ... 'RANK' ...`)."""
    reads: frozenset[str] = frozenset()
    """Every other global a config may set to effect: names train.py assigns before running
    the configurator (a list, a computed value) and names it may read after before assigning
    them (`scriptnames`). Not config keys with a default, but never unknown."""
    loop: Loop = NANOGPT_LOOP
    """train.py's micro-step: whether it keeps the logits through the backward (`read_loop`)."""
    fixed_vocab: tuple[int, int] | None = None
    """The vocab size train.py gives its model whatever the dataset, and the line where
    (`forkmodel.fixed_vocab`); None: from the data's meta.pkl, as nanoGPT."""
    unread: frozenset[str] = frozenset()
    """The keys train.py assigns but never reads by name (`unread_keys`): a config that sets one
    changes nothing (`EffectiveConfig.acted_on`)."""
    optimizer_call: OptimizerCall | None = NANOGPT_OPTIMIZER_CALL
    """What train.py passes to the model's `configure_optimizers` (None: it calls none, or
    cannot be read; `forkmodel.optimizer_call`)."""
    data_folder: tuple[int, Term] | None = None
    """The folder train.py reads `<dataset>/meta.pkl` under, with the line of its `data_dir`
    (`forkmodel.data_folder`); None where it assigns none (nanoGPT's `data` assumed)."""
    model_kv_default: tuple[str, int, str] | None = None
    """The key/value-head count the model file of train.py (`model_py`) builds with, its
    `GPTConfig` default, where train.py does not pass it: the key, the count and `FILE:LINE`
    (`forkmodel.model_kv_default`)."""
    fork_optimizers: ForkOptimizers | None = None
    """The optimizers other than AdamW the `configure_optimizers` of the model file of
    train.py (`model_py`) builds, with the `if` tests they are under
    (`forkmodel.fork_optimizers`)."""
    model_py: Path | None = None
    """The file train.py's GPT is read from: the module it imports GPT from, found from its
    folder (`forkmodel.model_module`); where it imports none, a model.py beside it; None where
    there is neither."""
    model_unread: str | None = None
    """Where train.py imports GPT from a module that no file beside it is (an installed
    package, or a model.py left out): the import, said with its line; no model can be read."""
    forward_call: tuple[int, str] | None = None
    """Where train.py's training step calls its model without the targets, the loss computed
    outside it: the line and the call (`program.training_forward`); None: nanoGPT's
    `model(X, Y)`."""

    @property
    def architecture_keys(self) -> tuple[str, ...]:
        """Model arguments this train.py passes that nanoGPT's `GPTConfig` does not have
        (`n_exp` in a mixture-of-experts fork): its model is not nanoGPT's."""
        return tuple(k for k in self.model_args if k not in NANOGPT_MODEL_ARGS)

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def reads_name(self, key: str) -> bool:
        """Whether a config that sets `key` changes what train.py does (a key, or a name it
        reads)."""
        return key in self.keys or key in self.reads

    def default(self, key: str) -> Any:
        spec = self.keys.get(key)
        return UNKNOWN if spec is None else spec.default


NANOGPT_SCHEMA = Schema(
    {k: KeySpec(k, v, type(v)) for k, v in NANOGPT_DEFAULTS.items()}, "nanoGPT train.py"
)


def schema_from_train_py(
    path: Path, gpu: GpuProfile | None = None, model: Path | None = None
) -> Schema:
    """Read a fork's train.py without running it: the keys are the globals it assigns before it
    runs `configurator.py` (at the top level, or in an `if` whose test is known, such as
    `if True:`), with their defaults where they are of simple type (int, float, bool, str) or
    None, as train.py's own `config_keys` list collects them. Assignments in a branch that
    static reading cannot choose give a key with an unknown default. With `gpu`, values that
    depend only on the machine (`torch.cuda.is_available()`, `torch.cuda.is_bf16_supported()`
    ...) are those of a machine with that GPU (`gptlint.nanogpt.machine`), and their KeySpec
    says so. The model is read from `model` (the `model` setting) where given, else from the
    file train.py imports its GPT from (`Schema.model_py`).
    """
    try:
        config = parse_config(read_source(str(path)))
    except SourceError as exc:
        raise SchemaError(f"{path}:{exc.line}: cannot read defaults: {exc.message}") from None
    env: dict[str, Any] = {"__name__": "__main__"}
    specs: dict[str, KeySpec] = {}
    assigned: set[str] = set()
    taken: dict[int, set[int]] = {}
    stop = _configurator_index(config.module)
    for assignment in config.assignments:
        if assignment.index >= stop:
            continue
        assigned.add(assignment.key)
        if assignment.conditional:
            if assignment.index not in taken:
                taken[assignment.index] = _taken_branches(assignment.statement, env)
            if id(assignment.node) not in taken[assignment.index]:
                env[assignment.key] = UNKNOWN
                _uncertain(specs, assignment.key, config.position(assignment.target).start.line)
                continue
        expression, machine = assignment.value, None
        if expression is not None and gpu is not None:
            expression, answered = target_calls(expression, gpu)
            machine = gpu.name if answered else None
        value = UNKNOWN if expression is None else evaluate(expression, env)
        if assignment.operator is not None:
            value = UNKNOWN
        env[assignment.key] = value
        if assignment.key.startswith("_"):
            continue
        if value is UNKNOWN:
            kind = _branch_type(assignment.value, env)
            if kind is None:
                specs.pop(assignment.key, None)
                continue
        elif value is None:
            kind = None
        elif not isinstance(value, _CONFIG_TYPES):
            specs.pop(assignment.key, None)
            continue
        else:
            kind = type(value)
        line = config.position(assignment.target).start.line
        specs[assignment.key] = KeySpec(assignment.key, value, kind, line, machine)
    text = config.source.text
    for spec in _read_through_globals(text):
        specs.setdefault(spec.name, spec)
    tree = parse_python(text)  # CPython's tree, for the readings below (None: does not parse)
    model_py, model_unread = (
        (model, None)
        if model is not None
        else _model_file(path, () if tree is None else gpt_imports(tree))
    )
    model_tree = None if model_py is None else parse_model_py(model_py)
    other, branches, sequence = _fork_model(path, tree)
    read = None if model_py is None or model_tree is None else (model_py, model_tree)
    differences = () if read is None else model_differences(*read)
    rewrites, ddp_flags = collect_rewrites(
        config.module, stop + 1, set(specs), lambda node: config.position(node).start.line
    )
    return Schema(
        specs,
        str(path),
        splits_accumulation=_splits_accumulation(text),
        calls_compile="torch.compile(" in text,
        model_args=_model_args(config.module),
        other_models=other,
        model_differences=differences,
        init_from_branches=branches,
        pretrained_passes=None if tree is None else pretrained_overrides(tree),
        sequence_key=sequence if sequence in specs else None,
        rewrites=rewrites,
        ddp_flags=ddp_flags,
        reads=frozenset(assigned) | _read_after_configurator(text, tree),
        loop=read_loop(tree),
        optimizer_call=None if tree is None else optimizer_call(tree),
        forward_call=training_forward(tree),
        fork_optimizers=None if read is None else fork_optimizers(*read),
        data_folder=None if tree is None else data_folder(tree),
        model_kv_default=None if read is None else _kv_default(*read, config.module, specs),
        model_py=model_py,
        model_unread=model_unread,
        unread=unread_keys(tree, set(specs)),
        fixed_vocab=None if tree is None else fixed_vocab(tree),
    )


def _model_file(
    train_py: Path, imports: tuple[tuple[int, str], ...]
) -> tuple[Path | None, str | None]:
    """`Schema.model_py` and `Schema.model_unread` of the training script at `train_py`, whose
    imports of GPT are `imports` (`forkmodel.gpt_imports`)."""
    module = model_module(train_py, imports)
    if module is not None:
        return module.path, None if module.path is not None else module.unread(train_py)
    beside = train_py.parent / "model.py"
    return (beside if beside.is_file() else None), None


def unread_keys(tree: ast.Module | None, keys: set[str]) -> frozenset[str]:
    """The `keys` no expression of train.py (CPython tree `tree`) reads by name, anywhere
    (before or after the configurator, in a function): none where it does not parse."""
    if tree is None:
        return frozenset()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            read.add(node.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            read.add(node.target.id)  # `key *= 8` reads it too
    return frozenset(keys - read)


def _fork_model(
    path: Path, tree: ast.Module | None
) -> tuple[tuple[tuple[int, str], ...], tuple[str, ...], str | None]:
    """`Schema.other_models`, `init_from_branches` and `sequence_key` for the train.py at
    `path`, of CPython tree `tree` (None: it does not parse)."""
    if tree is None:
        return (), (), None
    return other_models(path, tree), init_from_branches(tree), sequence_key(tree)


def _kv_default(
    model_py: Path, model_tree: ast.Module, module: cst.Module, specs: dict[str, KeySpec]
) -> tuple[str, int, str] | None:
    """`Schema.model_kv_default`: of the model file at `model_py` (tree `model_tree`) that
    the train.py of libcst module `module` and keys `specs` imports its GPT from."""
    passed = frozenset(_model_args(module)) | frozenset(specs)
    found = model_kv_default(model_tree, passed, KV_HEAD_KEYS)
    return None if found is None else (found[0], found[1], f"{model_py}:{found[2]}")


def _uncertain(specs: dict[str, KeySpec], key: str, line: int) -> None:
    """A key assigned in a branch static reading cannot choose: its default is unknown."""
    if key.startswith("_"):
        return
    spec = specs.get(key)
    kind = spec.type if spec is not None else None
    specs[key] = KeySpec(key, UNKNOWN, kind, spec.line if spec else line)


def _taken_branches(statement: cst.BaseStatement, env: dict[str, Any]) -> set[int]:
    """The ids of the small statements of `statement` that surely run: those in the branches of
    `if` statements whose tests evaluate statically (`if True:`, `if __name__ == '__main__':`)."""
    taken: set[int] = set()
    block: cst.CSTNode | None = statement
    while isinstance(block, cst.If):
        test = evaluate(block.test, env)
        if test is UNKNOWN:
            return taken
        if test:
            _take_suite(block.body, env, taken)
            return taken
        block = block.orelse.body if isinstance(block.orelse, cst.Else) else block.orelse
        if isinstance(block, cst.BaseSuite):
            _take_suite(block, env, taken)
            return taken
    return taken


def _take_suite(suite: cst.BaseSuite, env: dict[str, Any], taken: set[int]) -> None:
    if isinstance(suite, cst.SimpleStatementSuite):
        taken.update(id(small) for small in suite.body)
        return
    for line in cst.ensure_type(suite, cst.IndentedBlock).body:  # the only other suite
        if isinstance(line, cst.SimpleStatementLine):
            taken.update(id(small) for small in line.body)
        else:
            taken.update(_taken_branches(line, env))


def _read_after_configurator(text: str, tree: ast.Module | None) -> frozenset[str]:
    """The names train.py (source `text`, CPython tree `tree`) may read after the statement
    that runs the configurator."""
    if tree is None:
        return frozenset()
    lines = text.splitlines()
    for index, statement in enumerate(tree.body):
        end = statement.end_lineno or statement.lineno
        if any("configurator" in line for line in lines[statement.lineno - 1 : end]):
            return names_read_after(tree, index + 1)
    return frozenset()


_GLOBALS_GET = re.compile(
    r"globals\(\)\.get\(\s*(['\"])(?P<key>\w+)\1\s*(?:,(?P<default>[^()]*))?\)"
)


def _read_through_globals(text: str) -> list[KeySpec]:
    """Keys train.py reads with `globals().get('key', default)`: a config may set them (it runs
    in train.py's globals) although train.py never assigns them."""
    specs = []
    for match in _GLOBALS_GET.finditer(text):
        default: Any = None
        try:
            default = ast.literal_eval((match.group("default") or "None").strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            default = UNKNOWN
        kind = type(default) if isinstance(default, _CONFIG_TYPES) else None
        line = text.count("\n", 0, match.start()) + 1
        specs.append(KeySpec(match.group("key"), default, kind, line))
    return specs


_SPLIT_ACCUMULATION = re.compile(r"gradient_accumulation_steps\s*//=\s*\w*world_size")


def _splits_accumulation(text: str) -> bool:
    """Whether train.py's code divides the accumulation by the world size (`//=`)."""
    return _SPLIT_ACCUMULATION.search(text) is not None


def schema_for(
    config_path: Path,
    defaults: Path | None,
    gpu: GpuProfile,
    text: str | None = None,
    model: Path | None = None,
) -> Schema:
    """The schema for a config on the target `gpu`: the `defaults` train.py (the setting of
    that name), else the training script found beside the config folder (`find_train_py`;
    `text` is the config's, when the caller has read it), else nanoGPT's defaults; its model
    read from `model` (the setting of that name) where given."""
    if defaults is not None:
        return _schema_of(defaults, gpu, model)
    scripts, other = _find_scripts(_folder_of(config_path))
    if other is not None:
        raise NotNanoGPTError(
            f"{other} does not run configurator.py: this project's training script is not"
            " nanoGPT-style, so its configs' keys, model and memory are not checked (name a"
            " nanoGPT-style train.py with --defaults / [tool.gptlint] defaults)"
        )
    if len(scripts) > 1:
        return _choose(scripts, config_path, text, gpu, model)
    return _schema_of(scripts[0], gpu, model) if scripts else NANOGPT_SCHEMA


def _schema_of(train_py: Path, gpu: GpuProfile, model: Path | None = None) -> Schema:
    version = _version(train_py)
    model_py = model or _model_file(train_py, _gpt_imports_of(train_py, version))[0]
    model_version = None if model_py is None else _version(model_py)
    return _schema_from(train_py, version, model, model_version, gpu)


@lru_cache(maxsize=32)
def _gpt_imports_of(train_py: Path, version: tuple[int, int] | None) -> tuple[tuple[int, str], ...]:
    """`forkmodel.gpt_imports` of the train.py at `train_py`, read once per state of it
    (`version`); where its files are found is looked at each time (`_model_file`)."""
    try:
        tree = parse_python(train_py.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return ()
    return () if tree is None else gpt_imports(tree)


def _version(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


@lru_cache(maxsize=32)
def _schema_from(
    train_py: Path,
    version: tuple[int, int] | None,
    model: Path | None,
    model_version: tuple[int, int] | None,
    gpu: GpuProfile,
) -> Schema:
    """A train.py's schema with the model file `model` (None: the one it imports its GPT
    from), read once per state of them (`version`, `model_version`) and target GPU."""
    return schema_from_train_py(train_py, gpu, model)


_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_]\w*)\s*(?::[^=\n]*)?[-+*/%@&|^]?=(?!=)", re.M)


def _choose(
    scripts: tuple[Path, ...],
    config_path: Path,
    text: str | None,
    gpu: GpuProfile,
    model: Path | None,
) -> Schema:
    """Of several training scripts, the one a config is for: the one script its text names (a
    `python train_x.py config/...` comment), else the one that knows the most of the keys it
    sets, then the one it is named after (`_named_after`); train.py on a tie or when the
    config cannot be read."""
    if text is None:
        try:
            text = Path(config_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
    named = [s for s in scripts if re.search(rf"(?<![\w.]){re.escape(s.name)}\b", text)]
    if len(named) == 1:
        return _schema_of(named[0], gpu, model)
    keys = set(_TOP_LEVEL_KEY.findall(text))
    schemas = [_schema_of(script, gpu, model) for script in scripts]
    scores = [
        (sum(1 for key in keys if schema.reads_name(key)), _named_after(script, Path(config_path)))
        for script, schema in zip(scripts, schemas, strict=True)
    ]
    return schemas[scores.index(max(scores))]  # scripts are sorted with train.py first


def _named_after(script: Path, config_path: Path) -> int:
    """How well the config's name or folder follows the script's (`train_llama_130m.py` or
    `config/llama/` for train_llama.py): the length of the part that matches, else 0."""
    if script.name == "train.py":
        return 0
    if config_path.stem.startswith(script.stem):
        return len(script.stem)
    short = script.stem.removeprefix("train").lstrip("_-")
    return len(short) if short and short in config_path.parent.parts else 0


def find_train_py(config_path: Path) -> Path | None:
    """The nanoGPT-style training script (a `train*.py` that runs configurator.py) in the
    config's folder or above, up to the project root (a folder with pyproject.toml or .git):
    train.py where there are several."""
    scripts, _ = _find_scripts(_folder_of(config_path))
    return scripts[0] if scripts else None


def _folder_of(config_path: Path) -> str:
    folder = os.path.dirname(os.fspath(config_path))  # a string: this runs once per file
    return os.path.join(os.getcwd(), folder)


@lru_cache(maxsize=256)
def _find_scripts(folder: str) -> tuple[tuple[Path, ...], Path | None]:
    """The training scripts that run configurator.py in the nearest folder that has any, from
    `folder` up to the project root, else those in the root's folders that run from the root
    (`_run_from_root`); or, where the nearest training script is a train.py that does not run
    it (a Lightning or dataclass-settings project), no script and that train.py."""
    directory = Path(folder).resolve()
    for candidate_dir in (directory, *directory.parents):
        found = _training_scripts(candidate_dir)
        if found:
            return found, None
        if _is_code(candidate_dir / "train.py"):
            return (), candidate_dir / "train.py"
        if (candidate_dir / "pyproject.toml").exists() or (candidate_dir / ".git").exists():
            return _run_from_root(candidate_dir), None
    return (), None


@lru_cache(maxsize=16)
def _run_from_root(root: Path) -> tuple[Path, ...]:
    """The training scripts in the folders of the project's `root` (one level down) that run
    from the root (`forkmodel.run_folder`: `src/train.py` opening 'src/configurator.py'),
    train.py first; read once per root, however many of its folders' configs ask."""
    try:
        with os.scandir(root) as entries:
            folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return ()
    found = [s for name in folders for s in _training_scripts(root / name) if run_folder(s) == root]
    return tuple(sorted(found, key=lambda script: script.name != "train.py"))


_CODE = re.compile(rb"^(?:async\s+def|def|class)\s|__name__\s*==", re.M)


def _is_code(path: Path) -> bool:
    """Whether the regular file at `path` is a program (defines functions or classes, or runs
    as `__main__`) rather than a config that happens to be called train.py."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as stream:
            return _CODE.search(stream.read()) is not None
    except OSError:
        return False


def _training_scripts(folder: Path) -> tuple[Path, ...]:
    """The scripts in `folder` that run configurator.py (train.py first, then any other
    `train*.py`: a fork may call it `train_gpt2.py` or keep variants beside it). A folder of
    configs may hold a thousand `train_*.py`: read as plainly as can be, once."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(fnmatch.filter((e.name for e in entries), "train*.py"))
    except OSError:
        return ()
    base = os.fspath(folder)
    names.sort(key=lambda name: name != "train.py")
    return tuple(folder / name for name in names if _runs_configurator(os.path.join(base, name)))


def _runs_configurator(path: str) -> bool:
    """Whether the regular file at `path` mentions configurator, looked for in its bytes (an
    ASCII word is in UTF-8 text exactly where it is in the decoded text)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as stream:
            return b"configurator" in stream.read()
    except OSError:
        return False


def _model_args(module: cst.Module) -> tuple[str, ...]:
    """The keywords of the first top-level `model_args = dict(...)` (nanoGPT's if none)."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if (
                isinstance(small, cst.Assign)
                and any(
                    isinstance(t.target, cst.Name) and t.target.value == "model_args"
                    for t in small.targets
                )
                and isinstance(small.value, cst.Call)
                and isinstance(small.value.func, cst.Name)
                and small.value.func.value == "dict"
            ):
                return tuple(a.keyword.value for a in small.value.args if a.keyword is not None)
    return NANOGPT_MODEL_ARGS


def _configurator_index(module: cst.Module) -> int:
    """Index of the first top-level statement that mentions configurator (or the end)."""
    for index, statement in enumerate(module.body):
        if "configurator" in module.code_for_node(statement):
            return index
    return len(module.body)


def _branch_type(value: cst.BaseExpression | None, env: dict[str, Any]) -> type | None:
    """For `'bfloat16' if cuda_bf16 else 'float16'`: the type both branches share, if simple."""
    if not isinstance(value, cst.IfExp):
        return None
    body, orelse = evaluate(value.body, env), evaluate(value.orelse, env)
    if UNKNOWN in (body, orelse) or type(body) is not type(orelse):
        return None
    return type(body) if isinstance(body, _CONFIG_TYPES) else None


# Keys that set a grouped-query / multi-query attention head count in forks (and the Llama /
# lit-gpt names people carry over). nanoGPT itself has none of them.
KV_HEAD_KEYS = (
    "n_kv_head",
    "n_kv_heads",
    "n_head_kv",
    "num_kv_heads",
    "num_key_value_heads",
    "n_query_groups",
    "num_query_groups",
    "kv_heads",
    "multi_query_group_num",
)

# Model keys a config may write that nanoGPT's train.py never passes to GPTConfig.
MODEL_ONLY_KEYS = frozenset({"vocab_size", *KV_HEAD_KEYS})


# vocab_size that nanoGPT's own data/<dataset>/prepare.py scripts write to meta.pkl.
KNOWN_META_VOCAB = {"shakespeare_char": 65}
