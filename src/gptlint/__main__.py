"""`python -m gptlint`."""

from gptlint.command.cli import entry

entry()
