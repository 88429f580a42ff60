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

from gptlint.configfile import parse_config
from gptlint.evaluate import evaluate
from gptlint.gpus import DEFAULT_GPU, GpuProfile, get_profile
from gptlint.machine import target_calls
from gptlint.program import NANOGPT_LOOP, Loop, read_loop
from gptlint.settings import Settings
from gptlint.source import SourceError, read_source
from gptlint.values import UNKNOWN

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
    loop: Loop = NANOGPT_LOOP
    """train.py's micro-step: whether it keeps the logits through the backward (`read_loop`)."""

    @property
    def architecture_keys(self) -> tuple[str, ...]:
        """Model arguments this train.py passes that nanoGPT's `GPTConfig` does not have
        (`n_exp` in a mixture-of-experts fork): its model is not nanoGPT's."""
        return tuple(k for k in self.model_args if k not in NANOGPT_MODEL_ARGS)

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def default(self, key: str) -> Any:
        spec = self.keys.get(key)
        return UNKNOWN if spec is None else spec.default


NANOGPT_SCHEMA = Schema(
    {k: KeySpec(k, v, type(v)) for k, v in NANOGPT_DEFAULTS.items()}, "nanoGPT train.py"
)


def schema_from_train_py(path: Path, gpu: GpuProfile | None = None) -> Schema:
    """Read a fork's train.py without running it: the keys are the top-level globals of simple
    type (int, float, bool, str) assigned before it runs `configurator.py`, as train.py's own
    `config_keys` list collects them. With `gpu`, values that depend only on the machine
    (`torch.cuda.is_available()`, `torch.cuda.is_bf16_supported()` ...) are those of a machine
    with that GPU (`gptlint.machine`), and their KeySpec says so.
    """
    try:
        config = parse_config(read_source(str(path)))
    except SourceError as exc:
        raise SchemaError(f"{path}:{exc.line}: cannot read defaults: {exc.message}") from None
    env: dict[str, Any] = {}
    specs: dict[str, KeySpec] = {}
    stop = _configurator_index(config.module)
    for assignment in config.assignments:
        if assignment.index >= stop or assignment.conditional:
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
    return Schema(
        specs,
        str(path),
        _splits_accumulation(text),
        "torch.compile(" in text,
        _model_args(config.module),
        read_loop(text),
    )


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


def schema_for(config_path: Path, settings: Settings | None) -> Schema:
    """The schema for a config: the `defaults` train.py, a train.py found beside the config
    folder, or nanoGPT's defaults."""
    train_py = settings.defaults if settings and settings.defaults else find_train_py(config_path)
    gpu = get_profile(settings.gpu if settings else DEFAULT_GPU)
    if train_py is None:
        return NANOGPT_SCHEMA
    info = train_py.stat()
    return _schema_from(train_py, (info.st_mtime_ns, info.st_size), gpu)


@lru_cache(maxsize=32)
def _schema_from(train_py: Path, version: tuple[int, int], gpu: GpuProfile) -> Schema:
    """A train.py's schema, read once per state of the file (`version`) and target GPU."""
    return schema_from_train_py(train_py, gpu)


def find_train_py(config_path: Path) -> Path | None:
    """A nanoGPT-style training script (train.py, or a fork's one `train*.py`, that runs
    configurator.py) in the config's folder or above, up to the project root (a folder with
    pyproject.toml or .git)."""
    folder = os.path.dirname(os.fspath(config_path))  # a string: this runs once per file
    return _find_train_py(os.path.join(os.getcwd(), folder))


@lru_cache(maxsize=256)
def _find_train_py(folder: str) -> Path | None:
    directory = Path(folder).resolve()
    for candidate_dir in (directory, *directory.parents):
        found = _training_script(candidate_dir)
        if found is not None:
            return found
        if (candidate_dir / "pyproject.toml").exists() or (candidate_dir / ".git").exists():
            return None
    return None


def _training_script(folder: Path) -> Path | None:
    """The script in `folder` that runs configurator.py: train.py, else the one `train*.py`
    that does (a fork may call it `train_gpt2.py`); None when there is none or no single one.
    A folder of configs may hold a thousand `train_*.py`: read as plainly as can be, once."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(fnmatch.filter((e.name for e in entries), "train*.py"))
    except OSError:
        return None
    base = os.fspath(folder)
    if "train.py" in names and _runs_configurator(os.path.join(base, "train.py")):
        return folder / "train.py"
    found = []
    for name in names:
        if name != "train.py" and _runs_configurator(os.path.join(base, name)):
            found.append(name)
            if len(found) > 1:
                return None
    return folder / found[0] if found else None


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
