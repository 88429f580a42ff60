"""An invocation's arguments read by argparse's rules against its entry script's options:
`--flag=value` and `--flag value`, a unique prefix of a long option (allow_abbrev), switches
(`store_true`) taking no value, `type=` conversion and `choices`, the last occurrence winning.
What argparse would exit on (an unknown or ambiguous flag, a missing or invalid value) is an
`ArgError` at the flag's line and column; a word only running the script can give is kept as
unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gptlint.nanochat.checkout import EntryScript, Option
from gptlint.nanochat.runscript import Arg, Unknown

_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
"""argparse's `_negative_number_matcher`: such a word is a value, not an option."""


@dataclass(frozen=True)
class Flag:
    """One flag as written: the option it resolved to, its value (converted by the option's
    type; True or False for a switch), the `--flag` token's line and column (1-based), and
    the exact span `[start, end)` of its value in the script's text (None for a switch, or a
    value a variable supplied the `=` of)."""

    option: Option
    written: str
    value: object
    line: int
    column: int
    value_span: tuple[int, int] | None
    unknown: Unknown | None = None


@dataclass(frozen=True)
class ArgError:
    """What argparse prints before it exits (status 2)."""

    message: str
    line: int
    column: int


@dataclass(frozen=True)
class ParsedArgs:
    """Every flag given, in order; argparse's errors; the words whose effect is unknown."""

    flags: tuple[Flag, ...]
    errors: tuple[ArgError, ...]
    opaque: tuple[Unknown, ...]

    def given(self, dest: str) -> Flag | None:
        """The flag that sets `dest` (the last one written), or None."""
        return next((f for f in reversed(self.flags) if f.option.dest == dest), None)


def _resolve(name: str, entry: EntryScript) -> Option | str:
    """The option a written long flag names (exactly, or as its unique prefix), or the
    error argparse gives."""
    for option in entry.options:
        if name in option.flags:
            return option
    matches = [
        (flag, option)
        for option in entry.options
        for flag in option.flags
        if flag.startswith("--") and flag.startswith(name)
    ]
    if len(matches) == 1:
        return matches[0][1]
    if matches:
        return f"ambiguous option: {name} could match {', '.join(f for f, _ in matches)}"
    return f"unrecognized arguments: {name}"


def _convert(option: Option, text: str) -> tuple[object, str | None]:
    """The value argparse stores (an `Unknown` for a `type=` not read), or its error."""
    converter = option.type
    if isinstance(converter, Unknown):
        return converter, None
    value: object = text
    if converter is not None:
        try:
            value = converter(text)
        except ValueError:
            name = converter.__name__
            return None, f"argument {option.flags[-1]}: invalid {name} value: {text!r}"
    if isinstance(option.choices, Unknown):
        return option.choices, None
    if option.choices is not None and value not in option.choices:
        choices = ", ".join(str(c) for c in option.choices)
        return (
            None,
            f"argument {option.flags[-1]}: invalid choice: {text!r} (choose from {choices})",
        )
    return value, None


class _Reader:
    def __init__(self, args: tuple[Arg, ...], entry: EntryScript) -> None:
        self.args = args
        self.entry = entry
        self.flags: list[Flag] = []
        self.errors: list[ArgError] = []
        self.opaque: list[Unknown] = []

    def error(self, message: str, arg: Arg) -> None:
        self.errors.append(ArgError(message, arg.line, arg.column))

    def read(self) -> ParsedArgs:
        i = 0
        while i < len(self.args):
            arg = self.args[i]
            i += 1
            if arg.text == "--" and not arg.unknown:
                for rest in self.args[i:]:
                    self.error(f"unrecognized arguments: {rest.text}", rest)
                break
            name, eq, _ = arg.text.partition("=")
            if arg.unknown and not eq:
                self.opaque.append(
                    Unknown(f"{arg.unknown.reason}: a word that may set any flag (line {arg.line})")
                )
                continue
            if not arg.text.startswith("--"):
                self.error(f"unrecognized arguments: {arg.text}", arg)
                continue
            option = _resolve(name, self.entry)
            if isinstance(option, str):
                self.error(option, arg)
                continue
            if eq:
                self.inline(option, arg, name)
            else:
                i = self.separate(option, arg, i)
        return ParsedArgs(tuple(self.flags), tuple(self.errors), tuple(self.opaque))

    def inline(self, option: Option, arg: Arg, name: str) -> None:
        """`--flag=value`."""
        index = len(name)
        start = arg.offsets[index] + 1 if arg.offsets[index] >= 0 else None
        span = (start, arg.end) if start is not None else None
        if not option.takes_value:
            if not arg.unknown:
                value = arg.text[index + 1 :]
                self.error(f"argument {option.flags[-1]}: ignored explicit argument {value!r}", arg)
            return
        self.store(option, arg, arg.text[index + 1 :], span, arg.unknown)

    def separate(self, option: Option, arg: Arg, i: int) -> int:
        """`--flag value`, or a switch."""
        if not option.takes_value:
            value = option.action != "store_false"
            self.flags.append(Flag(option, arg.text, value, arg.line, arg.column, None))
            return i
        if i >= len(self.args) or self._is_option(self.args[i]):
            self.error(f"argument {option.flags[-1]}: expected one argument", arg)
            return i
        nxt = self.args[i]
        self.store(option, arg, nxt.text, (nxt.start, nxt.end), nxt.unknown)
        return i + 1

    def _is_option(self, arg: Arg) -> bool:
        return arg.text.startswith("-") and not _NEGATIVE_NUMBER.match(arg.text)

    def store(
        self,
        option: Option,
        arg: Arg,
        text: str,
        span: tuple[int, int] | None,
        unknown: Unknown | None,
    ) -> None:
        written = arg.text.partition("=")[0]
        if unknown is not None:
            self.flags.append(Flag(option, written, None, arg.line, arg.column, span, unknown))
            return
        value, error = _convert(option, text)
        if error is not None:
            self.error(error, arg)
            return
        why = value if isinstance(value, Unknown) else None
        self.flags.append(
            Flag(option, written, None if why else value, arg.line, arg.column, span, why)
        )


def parse_args(args: tuple[Arg, ...], entry: EntryScript) -> ParsedArgs:
    """An invocation's arguments as its entry script's argparse reads them."""
    return _Reader(args, entry).read()
