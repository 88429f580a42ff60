"""Writing a fixed file: replace its bytes in one step, never over another writer's bytes, keeping
its owner and permissions, and never leaving a half-written file behind."""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from gptlint.text.files import FileTooLarge, read_regular

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
