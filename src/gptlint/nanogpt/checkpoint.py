"""`model_args` of a nanoGPT checkpoint (`ckpt.pt`), read without torch and without running
anything: the zip's pickle is read with every torch object replaced by a placeholder and every
other global refused; storages are never touched."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

from gptlint.nanogpt.metadata import PickleRefused, PlainDataUnpickler, load_bounded

MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size")
"""The `model_args` keys train.py saves and passes back to `GPTConfig` on resume."""


class CheckpointError(Exception):
    """A checkpoint that cannot be read as a nanoGPT checkpoint; str() names the file."""


MAX_PICKLE_BYTES = 64_000_000
"""The most of a checkpoint's `data.pkl` that is read: nanoGPT's holds the config, the
optimizer's small state and references to tensor storages (stored beside it, never read)."""


def read_checkpoint_model_args(path: Path) -> dict[str, Any]:
    """`model_args` of the torch.save'd nanoGPT checkpoint at `path`, without loading a tensor.

    Bounded before anything is built: the pickle is read up to MAX_PICKLE_BYTES (a zip bomb
    stops there) and scanned like a meta.pkl (`gptlint.nanogpt.metadata.load_bounded`)."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                raise CheckpointError(f"{path}: not a torch checkpoint (no data.pkl inside)")
            with archive.open(name) as file:
                raw = file.read(MAX_PICKLE_BYTES + 1)
    except zipfile.BadZipFile:
        raise CheckpointError(f"{path}: not a zip-format torch checkpoint") from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, zlib.error) as exc:
        # encrypted members, unknown compression methods, corrupt deflate streams
        raise CheckpointError(f"{path}: not read: {_short(exc)}") from None
    if len(raw) > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{path}: not read: data.pkl larger than {MAX_PICKLE_BYTES:,} bytes")
    try:
        checkpoint = load_bounded(raw, _CheckpointUnpickler)
    except PickleRefused as exc:
        raise CheckpointError(f"{path}: not read: {exc}") from None
    args = checkpoint.get("model_args") if isinstance(checkpoint, dict) else None
    if not isinstance(args, dict) or not all(k in args for k in MODEL_ARGS):
        raise CheckpointError(f"{path}: no nanoGPT `model_args` ({', '.join(MODEL_ARGS)})")
    return {k: args[k] for k in MODEL_ARGS}


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


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
