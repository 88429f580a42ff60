"""Applying fixes: rewrite only the targeted nodes and regenerate the file from its libcst tree,
which reproduces every other byte (comments, quotes, spacing, newlines) as it was."""

from __future__ import annotations

import ctypes
import difflib
import errno
import functools
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst

from gptlint.configfile import ConfigFile
from gptlint.diagnostics import Diagnostic, Edit
from gptlint.lint import LintResult, lint_source
from gptlint.settings import Settings
from gptlint.source import FileTooLarge, Source, gc_paused, read_regular, rereading

MAX_PASSES = 10


@dataclass
class FixOutcome:
    """A file after fixing: its new bytes, how many fixes were applied, what remains."""

    source: Source
    fixed: bytes
    applied: int
    remaining: LintResult

    @property
    def changed(self) -> bool:
        return self.fixed != self.source.raw

    def diff(self, name: str) -> bytes:
        """The fix as a unified diff in the file's own bytes (its encoding, a BOM kept as part
        of the first line), so that `patch` turns the file into exactly the fixed one; the
        headers name the file in its name's own bytes (`diff_name`)."""
        encoding = "utf-8" if self.source.encoding == "utf-8-sig" else self.source.encoding
        before, after = self.source.raw.decode(encoding), self.fixed.decode(encoding)
        body = _hunks(before, after)
        header = b"--- %s\n+++ %s\n" % (diff_name(name), diff_name(name))
        return header + body.encode(encoding, errors="backslashreplace")


def applicable(diagnostic: Diagnostic, unsafe: bool) -> bool:
    """Whether `--fix` (with `--unsafe-fixes` if `unsafe`) applies this diagnostic's fix."""
    return diagnostic.fix is not None and (unsafe or diagnostic.fix.safety == "safe")


def fix_source(
    source: Source,
    settings: Settings,
    unsafe: bool = False,
    schema_path: Path | None = None,
    result: LintResult | None = None,
) -> FixOutcome:
    """Apply fixes to `source` until none is left to apply (at most MAX_PASSES passes); a
    fix that touches a node another fix already claimed waits for the next pass. A pass whose
    result would not parse is dropped, so a faulty fix never breaks a file. `result` is the
    lint of `source` where the caller has it already. Each pass's text is linted again in
    full, but libcst reads again only the statements the pass changed (`rereading`), and
    no cyclic garbage collection goes through the file's trees meanwhile."""
    current, applied = source, 0
    if result is None:
        result = lint_source(current, settings, schema_path)
    for _ in range(MAX_PASSES):
        chosen = chosen_fixes(result.diagnostics, unsafe)
        if result.file is None or not chosen:
            break
        text = apply_fixes(result.file, chosen)
        if text == current.text:
            break
        candidate = replace(current, text=text, raw=current.encode(text))
        file = result.file
        with rereading(current.text, file.module, file.statement_lines), gc_paused():
            after = lint_source(candidate, settings, schema_path)
        if after.file is None:
            break
        current, result, applied = candidate, after, applied + len(chosen)
    return FixOutcome(source, current.raw, applied, result)


def apply_fixes(file: ConfigFile, chosen: list[Diagnostic]) -> str:
    """The file's text with the fixes of `chosen` (from `chosen_fixes`) applied: the tree is
    regenerated, so only the nodes the fixes name change."""
    edits = {edit.old: edit for diagnostic in chosen for edit in diagnostic.fix.edits}
    rewriter = _Rewriter(edits)
    return file.code_with(lambda node: node.visit(rewriter), edits)


def chosen_fixes(diagnostics: list[Diagnostic], unsafe: bool) -> list[Diagnostic]:
    """The diagnostics whose fixes one pass applies: applicable ones, skipping any whose edits
    touch a node an earlier one already claimed."""
    claimed: set[int] = set()
    chosen = []
    for diagnostic in diagnostics:
        if not applicable(diagnostic, unsafe):
            continue
        ids = {id(edit.old) for edit in diagnostic.fix.edits}
        if ids & claimed:
            continue
        claimed |= ids
        chosen.append(diagnostic)
    return chosen


class _Rewriter(cst.CSTTransformer):
    def __init__(self, edits: dict[cst.CSTNode, Edit]) -> None:
        super().__init__()
        self.edits = edits

    def on_leave(self, original_node, updated_node):
        edit = self.edits.get(original_node)
        return updated_node if edit is None else edit.rewrite(updated_node)


def _hunks(before: str, after: str) -> str:
    """The hunks of a unified diff of a file's text before and after fixing, as `patch -p0`
    applies them (the headers are `diff_name`'s): line endings are kept, and a last line
    without a newline is marked `\\ No newline at end of file`."""
    lines = list(difflib.unified_diff(_lines(before), _lines(after)))[2:]  # past ---/+++
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def diff_name(name: str) -> bytes:
    """`name` as a diff header writes it for `patch -p0`, in the name's own bytes (a name that
    is not UTF-8 is not re-encoded): as it is; followed by a tab where it holds a space (patch
    reads a name up to a tab, else up to whitespace); or, where it holds a tab, newline, quote,
    backslash or other control character, quoted with C escapes, as GNU diff writes it."""
    raw = os.fsencode(name)
    if any(byte < 0x20 or byte in b'"\\\x7f' for byte in raw):
        return b'"%s"' % b"".join(_escaped(byte) for byte in raw)
    return raw + b"\t" if b" " in raw else raw


def _escaped(byte: int) -> bytes:
    if byte in b'"\\':
        return b"\\" + bytes([byte])
    return b"\\%03o" % byte if byte < 0x20 or byte == 0x7F else bytes([byte])


def _lines(text: str) -> list[str]:
    """`text` split after each `\\n` only (str.splitlines also splits at form feeds and other
    characters that Python source treats as part of a line)."""
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


TEMP_MARK = ".gptlint-"
STALE_AFTER_S = 60.0


class FileChanged(OSError):
    """The file is no longer the bytes the fix was made from: replacing it would lose what was
    written to it meanwhile."""


def write_atomically(path: Path, data: bytes, read: bytes | None = None) -> list[str]:
    """Replace the contents of `path` (of the file it links to, for a symbolic link, which stays
    a link) with `data` in one step, keeping its owner, group and permission bits: write the
    data to a new file in the same folder, flush it to disk, then rename it over the original.
    Returns the names of stale temporary files it removed (see below).

    * `read`: the bytes `data` was made from. Where the file no longer holds exactly them
      (another process appended a line since), nothing is written: FileChanged. The check is
      made before writing and again just before the rename; a write that lands in the instant
      between that last check and the rename is not seen.
    * A file with more than one hard link is refused (OSError): a rename would split it from
      its other names, and writing into it in place is not atomic (a crash midway would leave
      a torn file under every name).
    * Where the owner cannot be kept (a file owned by someone else and no privilege to give a
      new file away), the write is refused rather than silently taking the file over.
    * The new file is created unnamed (Linux O_TMPFILE) and named (`.NAME.gptlint-XXXX.tmp`,
      with `linkat(AT_EMPTY_PATH)`, or through /proc/self/fd) only once it is complete, for
      the instant before the rename: a kill while the data is written leaves nothing. Where
      the kernel or file system allows neither, it is a named temporary file from the start,
      and a kill leaves it behind: the next fix of NAME removes such files once they are
      older than STALE_AFTER_S seconds (no write of gptlint's keeps one that long) and
      returns their names, so leftovers never pile up and are never removed silently.
    """
    path = path.resolve()
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"not a regular file, not written: {path}")
    if info.st_nlink > 1:
        raise OSError(
            f"the file has {info.st_nlink} hard links; replacing it would break them"
            " (not fixed: apply the fix with --diff and patch)"
        )
    _check_unchanged(path, info, read)
    folder = path.parent
    removed = _remove_stale_temporaries(folder, path.name)
    temporary = None
    try:
        try:
            temporary = _write_new(folder, path.name, data, info, unnamed=True)
        except _NoUnnamedFiles:
            temporary = _write_new(folder, path.name, data, info, unnamed=False)
        _check_unchanged(path, info, read)
        os.replace(temporary, path)
        temporary = None
        _sync_folder(folder)
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return removed


def _check_unchanged(path: Path, info: os.stat_result, read: bytes | None) -> None:
    """FileChanged unless `path` is still the file of `info` (same inode) and holds `read`."""
    if read is None:
        return
    now = path.stat()
    same = (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino) and now.st_size == len(read)
    if not same or _bytes_now(path, len(read)) != read:
        raise FileChanged(
            f"the file changed after gptlint read it ({len(read):,} bytes read,"
            f" {now.st_size:,} now): nothing written; run gptlint --fix again"
        )


class _NoUnnamedFiles(Exception):
    """This folder's file system cannot create an unnamed file and name it later."""


def _write_new(folder: Path, name: str, data: bytes, info: os.stat_result, unnamed: bool) -> str:
    """Write `data` to a new file in `folder` with the owner, group and mode of `info`, flushed
    to disk, and return its (temporary) name. `unnamed`: create it without a name (O_TMPFILE)
    and link it into the folder only once it is complete; _NoUnnamedFiles where that fails."""
    if unnamed:
        flags = getattr(os, "O_TMPFILE", 0)
        if not flags:
            raise _NoUnnamedFiles
        try:
            handle = os.open(folder, flags | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC):
                raise
            raise _NoUnnamedFiles from None
        temporary = None
    else:
        handle, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{name}{TEMP_MARK}", suffix=".tmp"
        )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if (info.st_uid, info.st_gid) != _owner(stream.fileno()):
                try:
                    os.fchown(stream.fileno(), info.st_uid, info.st_gid)
                except PermissionError:
                    raise OSError(
                        f"cannot keep the file's owner and group (uid {info.st_uid},"
                        f" gid {info.st_gid}): not fixed"
                    ) from None
            os.fchmod(stream.fileno(), stat.S_IMODE(info.st_mode))
            os.fsync(stream.fileno())
            if temporary is None:
                temporary = _name_unnamed(stream.fileno(), _temporary_name(folder, name))
    except BaseException:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def _bytes_now(path: Path, limit: int) -> bytes | None:
    """The file's bytes, None where it now holds more than `limit`."""
    try:
        return read_regular(path, limit)
    except FileTooLarge:
        return None


_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


def _name_unnamed(fd: int, name: str) -> str:
    """Give the unnamed file open as `fd` the name `name`: `linkat(fd, "", AT_FDCWD, name,
    AT_EMPTY_PATH)` (any user since Linux 6.10; before, with CAP_DAC_READ_SEARCH), else a link
    through `/proc/self/fd` (EXDEV where /proc is not this file system's view);
    _NoUnnamedFiles where neither works."""
    libc = _libc()
    if libc is not None and libc.linkat(fd, b"", _AT_FDCWD, os.fsencode(name), _AT_EMPTY_PATH) == 0:
        return name
    try:
        os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)
    except OSError:
        raise _NoUnnamedFiles from None
    return name


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, for linkat (Python's os.link cannot pass AT_EMPTY_PATH)."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _owner(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_uid, info.st_gid


def _temporary_name(folder: Path, name: str) -> str:
    return str(folder / f".{name}{TEMP_MARK}{os.urandom(6).hex()}.tmp")


def _remove_stale_temporaries(folder: Path, name: str) -> list[str]:
    """Remove the temporary files an earlier, killed `--fix` of `name` left in `folder`: named
    `.NAME.gptlint-XXXX.tmp` (or `.NAME.XXXXXXXX.tmp`, as gptlint named them before), regular
    files not written to for STALE_AFTER_S seconds (a running fix renames its own long before).
    Their names."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(?:gptlint-[0-9a-z_]+|[0-9a-z_]{{8}})\.tmp")
    try:
        entries = [e for e in os.scandir(folder) if pattern.fullmatch(e.name)]
    except OSError:
        return []
    now, removed = time.time(), []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_AFTER_S:
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def _sync_folder(folder: Path) -> None:
    """Flush the rename to disk (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
