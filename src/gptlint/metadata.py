"""nanoGPT's `data/<dataset>/meta.pkl`, read as plain data only: a pickle can run code, so
nothing it names is ever imported. One reader for the linter and the pytest plugin."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

from gptlint.schema import DEFAULT_VOCAB_SIZE, KNOWN_META_VOCAB


class MetaError(Exception):
    """A meta.pkl that cannot be read as plain data, or whose vocab_size is not usable;
    str() names the file, `reason` says what is wrong."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


class PlainDataUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers ... and refuses anything that names a global."""

    _ALLOWED: dict[tuple[str, str], Any] = {  # noqa: RUF012
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("collections", "OrderedDict"): OrderedDict,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused {module}.{name}: only plain data is accepted (a pickle can run code)"
            ) from None


def read_meta_vocab(path: Path) -> int | None:
    """`vocab_size` from a meta.pkl (None when it has none); MetaError when it is not plain
    data or its vocab_size is not a positive int."""
    try:
        with path.open("rb") as file:
            meta = PlainDataUnpickler(file).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise MetaError(path, f"not read: {exc}") from None
    vocab = meta.get("vocab_size") if isinstance(meta, dict) else None
    if vocab is None:
        return None
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab <= 0:
        raise MetaError(path, f"vocab_size must be a positive int, got {vocab!r}")
    return vocab


def find_meta(config_path: Path, dataset: str, cwd: Path | None = None) -> Path | None:
    """`data/<dataset>/meta.pkl` where train.py would open it (relative to the folder it runs
    in): the config's folder or one of the three above it (the project holding `config/`),
    else the working directory."""
    directory = config_path.resolve().parent
    folders = [directory, *list(directory.parents)[:3]]
    if cwd is not None:
        folders.append(cwd)
    for folder in folders:
        meta = folder / "data" / dataset / "meta.pkl"
        if meta.is_file():
            return meta
    return None


def dataset_vocab(
    config_path: Path, dataset: object, cwd: Path | None = None, strict: bool = False
) -> tuple[int, str]:
    """The vocab_size a scratch run of `dataset` gets and where it comes from: meta.pkl, the
    value nanoGPT's own prepare.py writes for its char datasets, else 50304. A meta.pkl that
    cannot be read raises MetaError when `strict`, else falls back and says so."""
    if not isinstance(dataset, str) or not dataset or "/" in dataset or "\\" in dataset:
        return DEFAULT_VOCAB_SIZE, "nanoGPT's default"
    name = f"data/{dataset}/meta.pkl"
    meta = find_meta(config_path, dataset, cwd)
    refused = ""
    if meta is not None:
        try:
            vocab = read_meta_vocab(meta)
        except MetaError as exc:
            if strict:
                raise
            vocab, refused = None, f"{name} unusable ({exc.reason}): "
        if vocab is not None:
            return vocab, f"from {name}"
    if dataset in KNOWN_META_VOCAB:
        return KNOWN_META_VOCAB[dataset], f"{refused}{name} as nanoGPT's prepare.py writes it"
    if refused:
        return DEFAULT_VOCAB_SIZE, f"{refused}nanoGPT's default"
    return DEFAULT_VOCAB_SIZE, f"no {name}: nanoGPT's default"
