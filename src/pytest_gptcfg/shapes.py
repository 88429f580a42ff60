"""The training step train.py would run for a resolved config: model shape and batch (no torch).

nanoGPT builds the model three ways: `scratch` (the config's shape, vocab from
`data/<dataset>/meta.pkl` -- for nanoGPT's own char datasets, what their prepare.py writes there,
as gptlint assumes -- else 50304), `resume` (the checkpoint's `model_args`) and `gpt2*`
presets (only `dropout` from the config). Every path then crops `block_size` down to the
config's. Files are read without running code: pickles go through restricted unpicklers.
"""

from __future__ import annotations

import dataclasses
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gptlint.gpus import GpuProfile
from gptlint.metadata import MetaError, PlainDataUnpickler, dataset_vocab
from gptlint.schema import PRETRAINED
from gptlint.values import UNKNOWN, is_known
from pytest_gptcfg.memory import ModelShape, StepSpec

DTYPES = ("float32", "bfloat16", "float16")
MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size")
OPTIMIZER_KEYS = ("weight_decay", "learning_rate", "beta1", "beta2", "grad_clip")
"""Keys the step uses that barely move memory: where unknown, nanoGPT's defaults stand in."""


class ShapeError(Exception):
    """The step cannot be built as train.py would build it; the message says why and what to do."""


class ConfigValues(Protocol):
    """The part of gptlint's EffectiveConfig used here."""

    path: str

    def get(self, key: str) -> Any: ...
    def origin(self, key: str) -> str: ...


@dataclass(frozen=True)
class TrainStep:
    """One micro-step as train.py runs it, and where its model shape came from."""

    spec: StepSpec
    model_from: str
    vocab_from: str
    gradient_accumulation_steps: int
    world_size: int

    @property
    def tokens_per_iter(self) -> int:
        """Tokens per optimizer step over all processes (nanoGPT's `tokens_per_iter`)."""
        return self.gradient_accumulation_steps * self.spec.batch_size * self.spec.block_size


def project_root(config_path: Path, cwd: Path) -> Path:
    """Where train.py runs: the folder holding the config's `config/` folder, else `cwd`."""
    parent = config_path.resolve().parent
    return parent.parent if parent.name == "config" else cwd


def train_step(
    cfg: ConfigValues,
    *,
    root: Path,
    profile: GpuProfile,
    compile_mode: str = "auto",
    world_size: int = 1,
    model_factory: Callable[[ModelShape], Any] | None = None,
) -> TrainStep:
    """The step for `cfg` run from `root`; raises ShapeError naming the key at fault."""
    init_from = _get(cfg, "init_from", str)
    block_size = _positive(cfg, "block_size")
    dropout = _get(cfg, "dropout", (int, float))
    if init_from == "scratch":
        shape, model_from, vocab_from = _scratch(cfg, root, block_size, dropout)
    elif init_from == "resume":
        shape, model_from = _resume(cfg, root, dropout)
        vocab_from = model_from
    elif init_from in PRETRAINED:
        shape = ModelShape(**{**PRETRAINED[init_from], "dropout": dropout})
        model_from = vocab_from = f"{init_from} preset"
    else:
        raise ShapeError(
            f"init_from={init_from!r} ({cfg.origin('init_from')}) is not one nanoGPT accepts "
            f"(scratch, resume, {', '.join(PRETRAINED)}): train.py never defines `model`"
        )
    if block_size > shape.block_size:
        raise ShapeError(
            f"block_size={block_size} ({cfg.origin('block_size')}) is larger than the "
            f"{model_from} model's {shape.block_size}: nanoGPT's first forward fails its "
            f"`t <= block_size` assert"
        )
    shape = _replace_block(shape, block_size)
    gas = _positive(cfg, "gradient_accumulation_steps")
    if gas % world_size:
        raise ShapeError(
            f"gradient_accumulation_steps={gas} ({cfg.origin('gradient_accumulation_steps')}) "
            f"is not divisible by the world size {world_size}: nanoGPT asserts it under DDP"
        )
    spec = StepSpec(
        shape=shape,
        batch_size=_positive(cfg, "batch_size"),
        block_size=block_size,
        gradient_accumulation_steps=gas // world_size,
        dtype=_dtype(cfg, profile),
        compile=_compile(cfg, compile_mode),
        model_factory=model_factory,
        **{key: _get(cfg, key, (int, float)) for key in OPTIMIZER_KEYS if is_known(cfg.get(key))},
    )
    return TrainStep(spec, model_from, vocab_from, gas, world_size)


def read_checkpoint_model_args(path: Path) -> dict[str, Any]:
    """`model_args` of a torch.save'd nanoGPT checkpoint, without loading any tensor.

    The zip's pickle is read with every torch object replaced by a placeholder and every other
    global refused; storages are never touched.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                raise ShapeError(f"{path}: not a torch checkpoint (no data.pkl in the archive)")
            with archive.open(name) as file:
                checkpoint = _CheckpointUnpickler(file).load()
    except zipfile.BadZipFile:
        raise ShapeError(f"{path}: not a zip-format torch checkpoint") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ShapeError(f"{path}: not read: {exc}") from None
    args = checkpoint.get("model_args") if isinstance(checkpoint, dict) else None
    if not isinstance(args, dict) or not all(k in args for k in MODEL_ARGS):
        raise ShapeError(f"{path}: no nanoGPT `model_args` ({', '.join(MODEL_ARGS)})")
    return {k: args[k] for k in MODEL_ARGS}


class _Placeholder:
    """Stands in for a torch object (tensor, storage type, dtype) in a checkpoint's pickle."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _CheckpointUnpickler(PlainDataUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" or module.startswith("torch."):
            return _Placeholder
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return None


def _scratch(
    cfg: ConfigValues, root: Path, block_size: int, dropout: float
) -> tuple[ModelShape, str, str]:
    dataset = _get(cfg, "dataset", str)
    try:
        vocab, vocab_from = dataset_vocab(Path(cfg.path), dataset, cwd=root, strict=True)
    except MetaError as exc:
        raise ShapeError(str(exc)) from None
    n_head = _positive(cfg, "n_head")
    n_embd = _positive(cfg, "n_embd")
    if n_embd % n_head:
        raise ShapeError(
            f"n_embd={n_embd} is not divisible by n_head={n_head}: nanoGPT's model asserts "
            f"`n_embd % n_head == 0` (see the lint item for a fix)"
        )
    shape = ModelShape(
        n_layer=_positive(cfg, "n_layer"),
        n_head=n_head,
        n_embd=n_embd,
        block_size=block_size,
        vocab_size=vocab,
        bias=_get(cfg, "bias", bool),
        dropout=dropout,
    )
    return shape, "scratch", vocab_from


def _resume(cfg: ConfigValues, root: Path, dropout: float) -> tuple[ModelShape, str]:
    out_dir = Path(_get(cfg, "out_dir", str))
    checkpoint = (out_dir if out_dir.is_absolute() else root / out_dir) / "ckpt.pt"
    if not checkpoint.is_file():
        raise ShapeError(
            f"init_from='resume' reads {checkpoint} (out_dir={str(out_dir)!r}, "
            f"{cfg.origin('out_dir')}), which does not exist"
        )
    args = read_checkpoint_model_args(checkpoint)
    return ModelShape(**args, dropout=dropout), f"checkpoint {checkpoint}"


def _replace_block(shape: ModelShape, block_size: int) -> ModelShape:
    """train.py's `crop_block_size` when the config asks for a shorter context."""
    return dataclasses.replace(shape, block_size=block_size)


def _dtype(cfg: ConfigValues, profile: GpuProfile) -> str:
    """The config's dtype; train.py's default falls back to float16 where bf16 is missing."""
    dtype = _get(cfg, "dtype", str)
    if dtype not in DTYPES:
        raise ShapeError(
            f"dtype={dtype!r} ({cfg.origin('dtype')}) is not one of "
            f"{', '.join(DTYPES)}: nanoGPT raises KeyError"
        )
    if dtype == "bfloat16" and not profile.bf16 and cfg.origin("dtype").startswith("default"):
        return "float16"
    return dtype


def _compile(cfg: ConfigValues, compile_mode: str) -> bool:
    if compile_mode != "auto":
        return compile_mode == "on"
    return _get(cfg, "compile", bool)


def _positive(cfg: ConfigValues, key: str) -> int:
    value = _get(cfg, key, int)
    if value <= 0:
        raise ShapeError(f"{key}={value} ({cfg.origin(key)}) must be positive")
    return value


def _get(cfg: ConfigValues, key: str, kind: type | tuple[type, ...]) -> Any:
    """`cfg[key]`, which must be statically known and of type `kind`."""
    value = cfg.get(key)
    if value is UNKNOWN:
        raise ShapeError(
            f"{key} is not known without running the config ({cfg.origin(key)}); "
            f"give its value with --gpt-set {key}=VALUE"
        )
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        expected = kind.__name__ if isinstance(kind, type) else "number"
        raise ShapeError(f"{key}={value!r} ({cfg.origin(key)}) must be {expected}")
    return value
