"""The value an entry script sees for each of its options in one invocation: the flag written
(last one wins) or the script's default; a problem where argparse would exit, where the value
is only known by running the run script, or where the checkout's default cannot be read."""

from __future__ import annotations

from dataclasses import dataclass, field

from gptlint.nanochat.argv import ParsedArgs, parse_args
from gptlint.nanochat.checkout import EntryScript
from gptlint.nanochat.runscript import Invocation, Unknown
from gptlint.runmodel.trainingrun import Problem


@dataclass
class FlagValues:
    """Reads option values by `dest`, collecting the problems of those read."""

    entry: EntryScript
    parsed: ParsedArgs
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        for error in self.parsed.errors:
            self.problems.append(
                Problem(
                    "arguments",
                    f"{self.entry.name}.py exits (argparse, line {error.line} column "
                    f"{error.column}): {error.message}",
                )
            )
        for word in self.parsed.opaque:
            self.problems.append(Problem("arguments", word.reason, unknown=True))

    def given(self, dest: str) -> bool:
        return self.parsed.given(dest) is not None

    def get(self, dest: str) -> object:
        """The value, or None (with a problem recorded) where it cannot be had."""
        flag = self.parsed.given(dest)
        if flag is not None:
            if flag.unknown is not None:
                self.problems.append(
                    Problem(
                        dest, f"{flag.written} is not known: {flag.unknown.reason}", unknown=True
                    )
                )
                return None
            return flag.value
        option = self.entry.option(dest)
        if option is None:
            self.problems.append(
                Problem(dest, f"{self.entry.path} has no option for {dest}", missing=True)
            )
            return None
        if isinstance(option.default, Unknown):
            self.problems.append(Problem(dest, option.default.reason, unknown=True))
            return None
        return option.default

    def number(self, dest: str) -> int | float | None:
        value = self.get(dest)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            if value is not None:
                self.problems.append(Problem(dest, f"{dest} is {value!r}, not a number"))
            return None
        return value

    def integer(self, dest: str) -> int | None:
        value = self.number(dest)
        if isinstance(value, float):
            self.problems.append(Problem(dest, f"{dest} is {value!r}, not an integer"))
            return None
        return value


def flag_values(invocation: Invocation, entry: EntryScript) -> FlagValues:
    """The option values `invocation` gives its entry script."""
    return FlagValues(entry, parse_args(invocation.args, entry))
