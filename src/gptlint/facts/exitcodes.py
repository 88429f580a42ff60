"""The exit codes of `gptlint`."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the process returns; an int, so `sys.exit` and comparisons with numbers work."""

    CLEAN = 0  # nothing found (or everything fixed)
    FOUND = 1  # problems remain (with --diff: fixes would change a file)
    ERROR = 2  # bad usage, broken settings, or a file that could not be read, parsed or written
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
