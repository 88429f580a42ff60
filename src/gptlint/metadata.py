"""nanoGPT's `data/<dataset>/meta.pkl`, read as plain data only: a pickle can run code, so
nothing it names is ever imported. One reader for the linter and the pytest plugin."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
from collections import OrderedDict
from pathlib import Path
from typing import Any

from gptlint.schema import DEFAULT_VOCAB_SIZE, KNOWN_META_VOCAB
from gptlint.source import read_regular, real_folder


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


MAX_META_BYTES = 4_000_000
"""nanoGPT's meta.pkl holds a vocab_size and two small dicts: a larger file is refused."""
MAX_META_OPCODES = 1_000_000
MAX_META_DEPTH = 1_000
MAX_VOCAB = 10_000_000
"""A larger vocab_size is not usable (the embedding alone would not fit any GPU)."""


def read_meta_vocab(path: Path) -> int | None:
    """`vocab_size` from a meta.pkl (None when it has none); MetaError when it is not plain
    data or its vocab_size is not a positive int up to MAX_VOCAB.

    Size, opcode count and nesting are bounded before anything is built: the file is read up
    to MAX_META_BYTES and its opcodes scanned (pickletools.genops, which also rejects lengths
    that run past the end of the data, such as a forged 1 TB BINBYTES8)."""
    try:
        raw = read_regular(path, MAX_META_BYTES)
    except OSError as exc:
        raise MetaError(path, f"not read: {exc.strerror or exc}") from None
    if len(raw) > MAX_META_BYTES:
        raise MetaError(path, f"not read: larger than {MAX_META_BYTES:,} bytes")
    try:
        meta = load_bounded(raw, PlainDataUnpickler)
    except PickleRefused as exc:
        raise MetaError(path, f"not read: {exc}") from None
    vocab = meta.get("vocab_size") if isinstance(meta, dict) else None
    if vocab is None:
        return None
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab <= 0:
        raise MetaError(path, f"vocab_size must be a positive int, got {_describe(vocab)}")
    if vocab > MAX_VOCAB:
        raise MetaError(
            path, f"vocab_size {_describe(vocab)} is too large to be usable (over {MAX_VOCAB:,})"
        )
    return vocab


class PickleRefused(Exception):
    """A pickle that is not read; str() says why."""


def load_bounded(raw: bytes, unpickler: type[pickle.Unpickler]) -> Any:
    """Unpickle `raw` with `unpickler` after `_scan` found it bounded; PickleRefused with the
    reason for anything that is not plain, bounded data."""
    problem = _scan(raw)
    if problem:
        raise PickleRefused(problem)
    try:
        return unpickler(io.BytesIO(raw)).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        RecursionError,
        MemoryError,
    ) as exc:
        raise PickleRefused(_short(exc)) from None


def _scan(raw: bytes) -> str:
    """What is wrong with the pickle `raw` before unpickling it ('' when nothing): too many
    opcodes, nesting deeper than MAX_META_DEPTH (the unpickler's stack, marks included), a
    length past the end of the data."""
    depth, marks = 0, []
    try:
        for count, (opcode, _, _) in enumerate(pickletools.genops(raw)):
            if count >= MAX_META_OPCODES:
                return f"more than {MAX_META_OPCODES:,} pickle opcodes"
            before = opcode.stack_before
            if pickletools.stackslice in before:  # pops everything down to the last mark
                depth = marks.pop() if marks else 0
                before = before[: before.index(pickletools.markobject)]
            depth = max(0, depth - len(before))
            if pickletools.markobject in opcode.stack_after:
                marks.append(depth)
            else:
                depth += len(opcode.stack_after)
            if depth + len(marks) > MAX_META_DEPTH:
                return f"nested more than {MAX_META_DEPTH:,} levels deep"
    except (ValueError, TypeError, KeyError) as exc:
        return _short(exc)
    return ""


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


def _describe(value: object) -> str:
    """`value` for a message, bounded: a huge or deeply nested value is named, not printed."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() <= 64:
            return repr(value)
        digits = int(value.bit_length() * 0.30103)
        if value < 0:
            return f"a negative {value.bit_length()}-bit number (about -10^{digits})"
        return f"a {value.bit_length()}-bit number (about 10^{digits})"
    if isinstance(value, str | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= 60 else text[:60] + "..."
    return f"a {type(value).__name__}"


def find_meta(config_path: Path, dataset: str, cwd: Path | None = None) -> Path | None:
    """`data/<dataset>/meta.pkl` where train.py would open it (relative to the folder it runs
    in): the config's folder or one of the three above it (the project holding `config/`),
    else the working directory."""
    folders = [os.fspath(real_folder(config_path))]
    for _ in range(3):
        above = os.path.dirname(folders[-1])
        if above == folders[-1]:  # the root
            break
        folders.append(above)
    if cwd is not None:
        folders.append(os.fspath(cwd))
    for folder in folders:
        meta = os.path.join(folder, "data", dataset, "meta.pkl")
        if os.path.isfile(meta):  # False for a name the file system cannot hold (too long ...)
            return Path(meta)
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
