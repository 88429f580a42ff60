"""The `gptlint` command line. Heavy modules are imported after the arguments are read, so
`gptlint --version` starts fast and never loads libcst."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from gptlint import __version__
from gptlint.facts.exitcodes import ExitCode
from gptlint.settings.table import SETTINGS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with one line, as argparse does, but no usage dump
        self.exit(ExitCode.ERROR, f"gptlint: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gptlint",
        description="Lint nanoGPT-style training configs without running them.",
    )
    parser.add_argument(
        "paths", nargs="*", help="config files or folders (default: .); - reads stdin"
    )
    parser.add_argument("--fix", action="store_true", help="apply safe fixes in place")
    parser.add_argument(
        "--unsafe-fixes",
        action="store_true",
        help="with --fix or --diff, also apply fixes that may change what the run does",
    )
    parser.add_argument(
        "--diff", action="store_true", help="print the fixes as a diff, write nothing"
    )
    parser.add_argument(
        "--output-format", default="text", help="text (default), json, github or sarif"
    )
    parser.add_argument("--statistics", action="store_true", help="count diagnostics per code")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even if problems remain")
    parser.add_argument("--explain", metavar="CODE", help="explain a rule and exit")
    parser.add_argument("--list-rules", action="store_true", help="list every rule and exit")
    parser.add_argument(
        "--stdin-filename", help="lint stdin as this file (its settings, its train.py)"
    )
    for (
        spec
    ) in SETTINGS:  # raw strings: the runner checks them (gptlint.settings.pyproject.convert)
        flags = (spec.short_flag, spec.cli_flag) if spec.short_flag else (spec.cli_flag,)
        parser.add_argument(
            *flags,
            dest=spec.name,
            help=spec.help,
            metavar=spec.metavar,
            action="append" if spec.repeatable else "store",
        )
    parser.add_argument("--version", action="version", version=f"gptlint {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run gptlint; returns the exit code (0 clean, 1 problems remain, 2 error)."""
    args = build_parser().parse_args(argv)
    try:
        # Imported here, not at the top, only for start-up time: the runner loads libcst and
        # every rule, which `--version`, `--help` and argument errors never need.
        from gptlint.command.invocation import execute

        return execute(args)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `gptlint config/ | head`: stop quietly, as other CLIs do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.ERROR
    except Exception as exc:  # never a traceback for the user; GPTLINT_DEBUG=1 shows it
        if os.environ.get("GPTLINT_DEBUG"):
            raise
        print(
            f"gptlint: internal error: {type(exc).__name__}: {exc}"
            " (please report it; GPTLINT_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return ExitCode.ERROR


def entry() -> NoReturn:
    """The `gptlint` command (its console script and `python -m gptlint`): `main`, output
    flushed, then an exit that skips tearing the interpreter down (freeing every module and
    object one by one: tens of milliseconds after a run, for nothing)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away: as main's BrokenPipeError
        code = ExitCode.ERROR
    os._exit(code)
