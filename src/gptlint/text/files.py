"""Reading a file's bytes safely (regular files only, up to a limit), and the folder a path's
links lead to."""

from __future__ import annotations

import io
import os
import stat
from functools import lru_cache
from pathlib import Path

MAX_SOURCE_BYTES = 2_000_000
"""Larger files are not configs; libcst would take minutes to parse one."""


class NotRegularFile(OSError):
    """A path that names (or links to) a FIFO, device or socket: never read."""


class FileTooLarge(OSError):
    """A file holding more bytes than the reader's limit: not read. `size` is its size."""

    def __init__(self, size: int) -> None:
        super().__init__(f"file too large ({size:,} bytes)")
        self.size = size


def real_folder(path: Path) -> Path:
    """The folder holding `path` with every link resolved (`path.resolve().parent`). Each
    folder is resolved once per process: a run over a thousand configs looks up a few."""
    name = os.fspath(path)
    if ".." in path.parts or os.path.islink(name):  # resolved in order, link by link
        return path.resolve().parent
    return _real_directory(os.path.dirname(os.path.abspath(name)))


@lru_cache(maxsize=1024)
def _real_directory(directory: str) -> Path:
    return Path(directory).resolve()


def read_regular(path: str | os.PathLike[str], limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of the regular file at `path` (`open_regular`); FileTooLarge, with the
    file's size, where it holds more than `limit`."""
    with open_regular(path) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > limit:
            raise FileTooLarge(size)
        data = stream.read(limit + 1)
        if len(data) > limit:  # it grew since fstat
            raise FileTooLarge(max(len(data), os.fstat(stream.fileno()).st_size))
        return data


def open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    """The regular file at `path` (a symbolic link is followed), open for reading. A FIFO,
    device or socket raises NotRegularFile without blocking: the file is opened non-blocking
    and checked with fstat, so a path swapped for a FIFO after a check cannot hang a read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file ({_kind(mode)}), skipped")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"
