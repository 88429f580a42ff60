"""A nanochat run script (`runs/*.sh`, or one command line) read into the invocations of
nanochat's entry points: `torchrun ... -m scripts.base_train -- ...`, `python -m
scripts.chat_sft ...`, `scripts/base_eval.py` paths, `scripts.tok_train` (for the vocabulary).

Variables the script sets to a literal at its top level are substituted; `export` and
`NAME=value command` set the environment a command sees. What only running the script can
tell (a variable set inside an `if` or a loop, `$(...)`, `${X:-y}`, one never assigned) is kept
as unknown with its reason and line, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from gptlint.nanochat.shellwords import (
    Command,
    Literal,
    Opaque,
    Reference,
    Word,
    line_starts,
    position,
    split_commands,
)

ENTRY_SCRIPTS = ("base_train", "chat_sft", "base_eval", "tok_train")
"""The entry points read: the three whose step the run model describes, and the tokenizer's."""

_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_PYTHON = re.compile(r"python[0-9.]*")
_TORCHRUN_MODULES = ("torch.distributed.run", "torch.distributed.launch")
_TORCHRUN_SWITCHES = {
    "--standalone",
    "-m",
    "--module",
    "--no-python",
    "--no_python",
    "--run-path",
    "--run_path",
}


@dataclass(frozen=True)
class Unknown:
    """A value only running the script gives, and why."""

    reason: str


Value = str | Unknown


@dataclass(frozen=True)
class Arg:
    """One argument word of an invocation, expanded: `text` is its value as far as it is
    known (up to its first unknown part when `unknown` is set); `offsets[i]` is where
    `text[i]` was written in the script (-1 for a character a variable gave)."""

    text: str
    unknown: Unknown | None
    start: int
    end: int
    line: int
    column: int
    offsets: tuple[int, ...]


@dataclass(frozen=True)
class WorldSize:
    """The processes a launcher starts: `size`, or `unknown`; `origin` says what set it."""

    size: int | None
    origin: str
    unknown: Unknown | None = None


@dataclass(frozen=True)
class Invocation:
    """One run of a nanochat entry point (`base_train`, `chat_sft`, `base_eval`, `tok_train`)."""

    script: str
    line: int
    launcher: str
    world: WorldSize
    env: tuple[tuple[str, Value], ...]
    args: tuple[Arg, ...]
    depth: int = 0
    """> 0 when written inside an `if`, a loop or a function body, or after `&&`/`||`."""
    where: str = ""
    """Why it may not run as written ("inside a `for`", "after `&&`"); empty when it does."""

    def env_value(self, name: str) -> Value | None:
        """The environment variable as the command sees it; None when the script sets none."""
        return dict(self.env).get(name)


SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
"""A shell variable's name, or a positional parameter's number."""


def given_variables(items: Iterable[str]) -> dict[str, str]:
    """`NAME=VALUE` items (gptlint's `--set`, the plugin's `--gpt-set`, `[tool.gptlint] set`)
    as the shell variables they give a run script; ValueError naming an item that is not
    `NAME=VALUE` with a shell variable's name."""
    given = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not SHELL_NAME.fullmatch(name):
            raise ValueError(
                f"--set {item!r}: a run script takes NAME=VALUE, NAME a shell variable"
            )
        given[name] = value
    return given


@dataclass
class _Shell:
    """The variables a script has set so far (an `Unknown` where only running gives the value)
    and the names it exported; `given`, the values the user gave (`--set NAME=VALUE`) for
    variables the script leaves unknown (never assigned, or assigned what only running gives),
    as if in the environment it runs in."""

    text: str
    starts: list[int]
    given: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Value] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)

    def value(self, name: str) -> Value | None:
        """The variable's value: the script's where it knows it, else the user's, else the
        script's `Unknown` (None: never assigned and not given)."""
        value = self.variables.get(name)
        if (value is None or isinstance(value, Unknown)) and name in self.given:
            return self.given[name]
        return value

    def where(self, offset: int) -> tuple[int, int]:
        return position(self.starts, offset)

    def expand(self, word: Word) -> Arg:
        chars: list[str] = []
        offsets: list[int] = []
        unknown: Unknown | None = None
        for piece in word.pieces:
            if isinstance(piece, Literal):
                chars.append(piece.text)
                offsets.extend(piece.offsets)
                continue
            value = self.reference(piece)
            if isinstance(value, Unknown):
                unknown = value
                break
            chars.append(value)
            offsets.extend([-1] * len(value))
        line, column = self.where(word.start)
        return Arg("".join(chars), unknown, word.start, word.end, line, column, tuple(offsets))

    def reference(self, piece: Reference | Opaque) -> Value:
        line, _ = self.where(piece.start)
        if isinstance(piece, Opaque):
            return Unknown(f"{piece.what} (line {line})")
        value = self.value(piece.name)
        if value is None:
            return Unknown(f"${piece.name} (line {line}) is not assigned in the script")
        if isinstance(value, Unknown):
            return value
        if not piece.quoted and (not value or any(c in value for c in " \t\n*?[")):
            return Unknown(f"${piece.name} (line {line}) is split or globbed unquoted")
        return value

    def assign(self, name: str, value: Value, command: Command, line: int) -> None:
        if command.depth and not isinstance(value, Unknown):
            value = Unknown(f"${name} is set {command.where} (line {line})")
        self.variables[name] = value

    def environment(self, prefix: dict[str, Value]) -> tuple[tuple[str, Value], ...]:
        env: dict[str, Value] = {}
        for name in self.exported | set(self.given):  # a given variable is in the environment
            value = self.value(name)
            if value is not None:
                env[name] = value
        env.update(prefix)
        return tuple(sorted(env.items()))


def _assignment(arg: Arg, word: Word) -> tuple[str, Value] | None:
    """`NAME=value` as bash takes it: an unquoted name, then `=`."""
    first = word.pieces[0] if word.pieces else None
    if not isinstance(first, Literal):
        return None
    match = _ASSIGNMENT.match(first.text)
    if match is None or first.offsets[match.end() - 1] != word.start + match.end() - 1:
        return None
    value: Value = arg.unknown if arg.unknown else arg.text[match.end() :]
    return match.group(1), value


def _entry_script(arg: Arg, module: bool) -> str | None:
    """`scripts.base_train` (a module) or `.../scripts/base_train.py` (a path)."""
    if arg.unknown:
        return None
    if module:
        parts = tuple(arg.text.split("."))
    else:
        path = PurePosixPath(arg.text)
        if path.suffix != ".py":
            return None
        parts = (*path.parent.parts[-1:], path.stem)
    if len(parts) == 2 and parts[0] == "scripts" and parts[1] in ENTRY_SCRIPTS:
        return parts[1]
    return None


def _count(arg: Arg | None, flag: str) -> WorldSize | int:
    if arg is None:
        return 1
    if arg.unknown:
        return WorldSize(None, flag, arg.unknown)
    if arg.text.isdigit():
        return int(arg.text)
    return WorldSize(
        None, flag, Unknown(f"{flag}={arg.text} (line {arg.line}) depends on the machine")
    )


def _torchrun(args: list[Arg]) -> tuple[WorldSize, str | None, list[Arg]]:
    """torchrun's own options, the script it runs, and that script's arguments."""
    options: dict[str, Arg] = {}
    i = 0
    while i < len(args) and args[i].text.startswith("-"):
        name, eq, value = args[i].text.partition("=")
        key = name.replace("_", "-")
        if eq:
            options[key] = _value_arg(args[i], len(name) + 1, value)
        elif name not in _TORCHRUN_SWITCHES and i + 1 < len(args):
            i += 1
            options[key] = args[i]
        i += 1
    if i >= len(args):
        return WorldSize(1, "torchrun"), None, []
    script = _entry_script(args[i], module="-m" in options or "--module" in options) or (
        _entry_script(args[i], module=True) if args[i].text.startswith("scripts.") else None
    )
    rest = args[i + 1 :]
    if rest and rest[0].text == "--" and not rest[0].unknown:
        rest = rest[1:]
    return _world(options), script, rest


def _value_arg(arg: Arg, skip: int, value: str) -> Arg:
    return Arg(value, arg.unknown, arg.start, arg.end, arg.line, arg.column, arg.offsets[skip:])


def _world(options: dict[str, Arg]) -> WorldSize:
    nproc_arg = options.get("--nproc-per-node")
    nproc = _count(nproc_arg, "--nproc_per_node")
    nodes_arg = options.get("--nnodes")
    nodes = _count(nodes_arg, "--nnodes")
    for part in (nproc, nodes):
        if isinstance(part, WorldSize):
            return part
    assert isinstance(nproc, int) and isinstance(nodes, int)
    origin = " ".join(
        f"{flag}={arg.text}"
        for flag, arg in (("--nproc_per_node", nproc_arg), ("--nnodes", nodes_arg))
        if arg is not None
    )
    return WorldSize(nproc * nodes, f"torchrun {origin}".strip())


def _python(args: list[Arg]) -> tuple[str | None, list[Arg], bool]:
    """`python [-u ...] -m module args` or `python path.py args`; whether it runs torchrun."""
    i = 0
    while i < len(args) and args[i].text.startswith("-") and args[i].text != "-m":
        i += 2 if args[i].text in ("-X", "-W") else 1
    if i >= len(args):
        return None, [], False
    if args[i].text == "-m" and i + 1 < len(args):
        if args[i + 1].text in _TORCHRUN_MODULES:
            return None, args[i + 2 :], True
        return _entry_script(args[i + 1], module=True), args[i + 2 :], False
    return _entry_script(args[i], module=False), args[i + 1 :], False


def _invocation(shell: _Shell, command: Command, words: list[Word]) -> Invocation | None:
    args = [shell.expand(w) for w in words]
    prefix: dict[str, Value] = {}
    while words and (found := _assignment(args[0], words[0])) is not None:
        prefix[found[0]] = found[1]
        words, args = words[1:], args[1:]
    if not args:
        for name, value in prefix.items():
            shell.assign(name, value, command, position(shell.starts, command.words[0].start)[0])
        return None
    if args[0].text == "export" and not args[0].unknown:
        _export(shell, command, words[1:], args[1:])
        return None
    if args[0].text == "unset":
        for arg in args[1:]:
            shell.variables.pop(arg.text, None)
            shell.exported.discard(arg.text)
        return None
    if args[0].text == "uv" and len(args) > 1 and args[1].text == "run":
        args = args[2:]
    if not args or args[0].unknown:
        return None
    program = PurePosixPath(args[0].text).name
    if program == "torchrun":
        world, script, rest = _torchrun(args[1:])
        launcher = "torchrun"
    elif _PYTHON.fullmatch(program):
        script, rest, via_torchrun = _python(args[1:])
        launcher = "python"
        world = WorldSize(1, "python: one process")
        if via_torchrun:
            world, script, rest = _torchrun(rest)
            launcher = "torchrun"
    else:
        return None
    if script is None:
        return None
    return Invocation(
        script,
        args[0].line,
        launcher,
        world,
        shell.environment(prefix),
        tuple(rest),
        command.depth,
        command.where,
    )


def _export(shell: _Shell, command: Command, words: list[Word], args: list[Arg]) -> None:
    for word, arg in zip(words, args, strict=True):
        found = _assignment(arg, word)
        name = found[0] if found else arg.text
        if found:
            shell.assign(found[0], found[1], command, arg.line)
        if command.depth:
            shell.variables[name] = Unknown(
                f"${name} is exported {command.where} (line {arg.line})"
            )
        shell.exported.add(name)


def bare_invocation(script: str) -> Invocation:
    """`python -m scripts.<script>` with no arguments: every option at its default."""
    return Invocation(script, 0, "python", WorldSize(1, "python: one process"), (), ())


def read_invocations(text: str, given: dict[str, str] | None = None) -> list[Invocation]:
    """Every invocation of a nanochat entry point in a run script's text, in order; `given`:
    the user's values of variables the script leaves unknown (`given_variables`)."""
    shell = _Shell(text, line_starts(text), dict(given or {}))
    found = []
    for command in split_commands(text):
        invocation = _invocation(shell, command, list(command.words))
        if invocation is not None:
            found.append(invocation)
    return found
