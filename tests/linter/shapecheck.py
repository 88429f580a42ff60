"""Running gptlint on a shape check (GPT000 and GPT101 only), in-process or in a child
process, for the tests of bad input and of a hostile filesystem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gptlint.command.cli import main


def gptlint(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--select", "GPT000,GPT101", *args])
    out, err = capsys.readouterr()
    return code, out, err


def gptlint_process(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """In a child process: a crash (a segfault in a parser) or a hang fails the test only."""
    return subprocess.run(
        [sys.executable, "-m", "gptlint", "--select", "GPT000,GPT101", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )
