"""`python -m gptlint`."""

from gptlint.cli import entry

entry()
