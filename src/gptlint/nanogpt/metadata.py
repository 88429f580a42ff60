"""nanoGPT's `data/<dataset>/meta.pkl`, read as plain data only: a pickle can run code, so
nothing it names is ever imported. One reader for the linter and the pytest plugin."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any, cast

from gptlint.nanogpt.schema import DEFAULT_VOCAB_SIZE, KNOWN_META_VOCAB
from gptlint.text.files import FileTooLarge, open_regular, read_regular, real_folder


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
"""A meta.pkl up to this size is read whole and unpickled as plain data; a larger one (a
tokenizer's tables beside the vocab_size) is followed as a stream up to its vocab_size."""
MAX_META_OPCODES = 1_000_000
MAX_META_DEPTH = 1_000
MAX_META_VALUE_BYTES = 64_000_000
"""A larger single value (a string, bytes) before a large meta.pkl's vocab_size is refused."""
MAX_VOCAB = 10_000_000
"""A larger vocab_size is not usable (the embedding alone would not fit any GPU)."""


def read_meta_vocab(path: Path) -> int | None:
    """`vocab_size` from a meta.pkl (None when it has none); MetaError when it is not plain
    data or its vocab_size is not a positive int up to MAX_VOCAB.

    Size, opcode count and nesting are bounded before anything is built: a file of up to
    MAX_META_BYTES is read whole and its opcodes scanned (pickletools.genops, which also
    rejects lengths that run past the end of the data, such as a forged 1 TB BINBYTES8)
    before it is unpickled; a larger one is read as a stream (`_streamed_vocab`)."""
    try:
        raw = read_regular(path, MAX_META_BYTES)
    except FileTooLarge as exc:
        return _checked_vocab(path, _streamed_vocab(path, exc.size))
    except OSError as exc:
        raise MetaError(path, f"not read: {exc.strerror or exc}") from None
    try:
        meta = load_bounded(raw, PlainDataUnpickler)
    except PickleRefused as exc:
        raise MetaError(path, f"not read: {exc}") from None
    return _checked_vocab(path, meta.get("vocab_size") if isinstance(meta, dict) else None)


def _checked_vocab(path: Path, vocab: object) -> int | None:
    """`vocab` as a usable vocab_size (None stays None), else MetaError saying why."""
    if vocab is None:
        return None
    if isinstance(vocab, _Built):
        raise MetaError(path, f"vocab_size must be a positive int, got a {vocab.name}")
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab <= 0:
        raise MetaError(path, f"vocab_size must be a positive int, got {_describe(vocab)}")
    if vocab > MAX_VOCAB:
        raise MetaError(
            path, f"vocab_size {_describe(vocab)} is too large to be usable (over {MAX_VOCAB:,})"
        )
    return vocab


def _streamed_vocab(path: Path, size: int) -> object:
    """The value of the top-level dict's `vocab_size` in a meta.pkl of `size` bytes, larger
    than MAX_META_BYTES, found by following its opcodes as a stream (`_TopLevelDict`) and
    stopping there: nanoGPT's prepare.py writes it first, before the tables. Nothing is
    built and no single read exceeds MAX_META_VALUE_BYTES; past MAX_META_OPCODES, or at a
    global (code), it is refused. None where the pickle ends without one."""
    try:
        with open_regular(path) as stream:
            tracker = _TopLevelDict()
            reader = cast(IO[bytes], _BoundedReader(stream))  # genops calls read, readline
            opcodes = pickletools.genops(reader)
            for count, (opcode, arg, _) in enumerate(opcodes):
                if count >= MAX_META_OPCODES:
                    raise PickleRefused(
                        f"no vocab_size in the first {MAX_META_OPCODES:,} pickle opcodes of"
                        f" its {size:,} bytes"
                    )
                found = tracker.step(opcode, arg)
                if found is not _MISSING:
                    return found
    except OSError as exc:
        raise MetaError(path, f"not read: {exc.strerror or exc}") from None
    except PickleRefused as exc:
        raise MetaError(path, f"not read: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise MetaError(path, f"not read: {_short(exc)}") from None
    return None


_MISSING = object()
_MARK = object()


class _Built:
    """On `_TopLevelDict`'s stack: what an opcode builds (a dict, a list ...), named only."""

    def __init__(self, name: str) -> None:
        self.name = name


_CODE = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
    | {"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4"}
)
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


class _TopLevelDict:
    """The unpickler's stack as it would be, without building anything: a mark, a literal
    read from the stream (a key such as 'vocab_size', a number), or what an opcode builds,
    named (`_Built`). Finds the value paired with the key 'vocab_size' in the top-level dict:
    when the dict takes the pair (SETITEM, SETITEMS), or, for an int, as soon as the next
    key follows it, as pickle.dump writes a dict (nanoGPT's vocab_size comes first, before
    the tables, whose SETITEMS is at the end of the file)."""

    def __init__(self) -> None:
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[object, object] = {}  # by the index each PUT or MEMOIZE gives
        self.candidate: tuple[int, int] | None = None  # an int after 'vocab_size': its place

    def step(self, opcode: pickletools.OpcodeInfo, arg: object) -> object:
        """Follow one opcode; vocab_size's value once known, else _MISSING. PickleRefused for
        code and for marks nested past MAX_META_DEPTH."""
        name = opcode.name
        if name in _CODE:
            raise PickleRefused(
                f"refused {name}: only plain data is accepted (a pickle can run code)"
            )
        if name in _MEMO_PUT:
            self.memo[len(self.memo) if arg is None else arg] = self.stack[-1]
            return _MISSING
        taken = self._taken(name)
        if taken is not _MISSING:
            return taken
        if name in _MEMO_GET:
            self.stack.append(self.memo[arg])
        elif name == "DUP":
            self.stack.append(self.stack[-1])
        else:
            self._pop(opcode.stack_before)
            self._push(opcode, arg)
        if len(self.marks) > MAX_META_DEPTH:
            raise PickleRefused(f"nested more than {MAX_META_DEPTH:,} levels deep")
        return self._followed()

    def _pairs(self) -> list[object] | None:
        """The key-value items pending for the top-level dict on the stack (above its mark,
        or on it alone), None where the top of the stack is not at that level."""
        stack = self.stack
        if not stack or not isinstance(stack[0], _Built) or stack[0].name != "dict":
            return None
        if not self.marks:
            return stack[1:]
        return stack[2:] if self.marks == [1] else None

    def _taken(self, name: str) -> object:
        """vocab_size's value where opcode `name` stores the pending items in the top-level
        dict: SETITEM on [dict, key, value], SETITEMS down to the dict's own mark."""
        pairs = self._pairs()
        if pairs is None or not (
            (name == "SETITEM" and not self.marks and len(pairs) == 2)
            or (name == "SETITEMS" and self.marks == [1])
        ):
            return _MISSING
        for key, value in zip(pairs[::2], pairs[1::2], strict=False):
            if key == "vocab_size":
                return value
        return _MISSING

    def _followed(self) -> object:
        """An int after 'vocab_size' in a MARK ... SETITEMS batch of the top-level dict, once
        the next key is pushed on top of it; else _MISSING, noting an int that has just come
        after 'vocab_size' there (a SETITEM next would store it in a dict nested there)."""
        pairs, candidate, stack = self._pairs(), self.candidate, self.stack
        self.candidate = None
        if pairs is None or not self.marks:
            return _MISSING
        if candidate is not None:
            place, value = candidate
            if len(stack) == place + 2 and stack[place] is value and isinstance(stack[-1], str):
                return value
        after_key = len(pairs) >= 2 and len(pairs) % 2 == 0 and pairs[-2] == "vocab_size"
        if after_key and type(pairs[-1]) is int:
            self.candidate = (len(stack) - 1, pairs[-1])
        return _MISSING

    def _pop(self, before: list) -> None:
        if pickletools.stackslice in before:  # everything down to the last mark
            del self.stack[self.marks.pop() :]
            before = before[: before.index(pickletools.markobject)]
        if before:
            del self.stack[-len(before) :]

    def _push(self, opcode: pickletools.OpcodeInfo, arg: object) -> None:
        for kind in opcode.stack_after:
            if kind is pickletools.markobject:
                self.marks.append(len(self.stack))
                self.stack.append(_MARK)
            elif opcode.name in _CONSTANTS:
                self.stack.append(_CONSTANTS[opcode.name])
            elif not opcode.stack_before and arg is not None:
                self.stack.append(arg)  # a literal: a string, a number
            else:
                self.stack.append(_Built(kind.name))


class _BoundedReader:
    """A file whose single reads (a string's length, a text line) may not exceed
    MAX_META_VALUE_BYTES: a forged length is refused without reading it."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > MAX_META_VALUE_BYTES:
            raise PickleRefused(_too_long())
        return self.stream.read(size)

    def readline(self) -> bytes:
        line = self.stream.readline(MAX_META_VALUE_BYTES + 1)
        if len(line) > MAX_META_VALUE_BYTES:
            raise PickleRefused(_too_long())
        return line


def _too_long() -> str:
    return f"a single value of more than {MAX_META_VALUE_BYTES:,} bytes before its vocab_size"


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
    depth = 0
    marks: list[int] = []  # the depth below each open mark
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


def find_meta(
    config_path: Path, dataset: str, cwd: Path | None = None, folder: str = "data"
) -> Path | None:
    """`<folder>/<dataset>/meta.pkl` where train.py would open it (`folder`: nanoGPT's `data`,
    or the folder a fork's train.py reads under): an absolute folder as it is; a relative one
    from the folder train.py runs in: the config's folder or one of the three above it (the
    project holding `config/`), else the working directory."""
    if os.path.isabs(folder):
        meta = os.path.join(folder, dataset, "meta.pkl")
        return Path(meta) if os.path.isfile(meta) else None
    folders = [os.fspath(real_folder(config_path))]
    for _ in range(3):
        above = os.path.dirname(folders[-1])
        if above == folders[-1]:  # the root
            break
        folders.append(above)
    if cwd is not None:
        folders.append(os.fspath(cwd))
    for base in folders:
        meta = os.path.join(base, folder, dataset, "meta.pkl")
        if os.path.isfile(meta):  # False for a name the file system cannot hold (too long ...)
            return Path(meta)
    return None


def dataset_vocab(
    config_path: Path,
    dataset: object,
    cwd: Path | None = None,
    strict: bool = False,
    folder: str | None = "data",
    unread: str | None = None,
) -> tuple[int, str]:
    """The vocab_size a scratch run of `dataset` gets and where it comes from: meta.pkl, the
    value nanoGPT's own prepare.py writes for its char datasets, else 50304. A meta.pkl that
    cannot be read raises MetaError when `strict`, else falls back and says so. `folder`: the
    folder train.py reads `<dataset>/meta.pkl` under (`find_meta`); None where static reading
    cannot tell it, and `unread` says where train.py names it."""
    # a dataset with a slash is a path only to a train.py whose `data_dir = dataset`
    nested = isinstance(dataset, str) and ("/" in dataset or "\\" in dataset)
    if not isinstance(dataset, str) or not dataset or (nested and folder != ""):
        return DEFAULT_VOCAB_SIZE, "nanoGPT's default"
    if folder is None:
        said = unread or "the folder train.py reads meta.pkl under cannot be told"
        if dataset in KNOWN_META_VOCAB:
            return KNOWN_META_VOCAB[dataset], f"{said}: what nanoGPT's prepare.py writes for it"
        return DEFAULT_VOCAB_SIZE, f"{said}: nanoGPT's default"
    name = os.path.join(folder, dataset, "meta.pkl")
    meta = find_meta(config_path, dataset, cwd, folder)
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
