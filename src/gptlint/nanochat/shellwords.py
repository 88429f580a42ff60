"""A shell script's text split into simple commands and their words, as bash reads them for
the lines a nanochat run script holds: `\\` line continuations, comments, single and double
quotes, `$NAME`/`${NAME}` references, and the parts a static reader cannot know (`$(...)`,
backquotes, `${X:-...}`, `$1`, arrays), each kept with its exact character span.

Nothing is expanded here: a word is a list of pieces (`Literal`, `Reference`, `Opaque`);
`runscript` expands them in order, with the variables the script has set so far.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEPARATORS = {";", "&", "|", "&&", "||", ";;", "\n", "|&"}
_OPEN_BLOCKS = {"if", "for", "while", "until", "case", "select"}
_CLOSE_BLOCKS = {"fi", "done", "esac", "}"}
_BLOCK_WORDS = {"then", "do", "else", "elif", "!", "time"}
_CONDITIONAL = ("&&", "||")


@dataclass(frozen=True)
class Literal:
    """Characters taken as written; `offsets[i]` is where `text[i]` stands in the script."""

    text: str
    offsets: tuple[int, ...]


@dataclass(frozen=True)
class Reference:
    """`$NAME` or `${NAME}`: a variable's value, known when the script set it to a literal."""

    name: str
    start: int
    quoted: bool


@dataclass(frozen=True)
class Opaque:
    """A part whose value only running the script gives (`$(...)`, `${X:-y}`, `$1` ...)."""

    what: str
    start: int


Piece = Literal | Reference | Opaque


@dataclass
class Word:
    """One shell word: its pieces and its span `[start, end)` in the script's text."""

    start: int
    end: int = 0
    pieces: list[Piece] = field(default_factory=list)
    quoted: bool = False

    def literal_text(self) -> str | None:
        """The word's text when it is all literal (no references or opaque parts)."""
        if all(isinstance(p, Literal) for p in self.pieces):
            return "".join(p.text for p in self.pieces if isinstance(p, Literal))
        return None


@dataclass(frozen=True)
class Command:
    """A simple command: its words in order; `depth` > 0 inside an `if`, a loop, a function
    body or a subshell, or after `&&`/`||` (where a static reader cannot tell whether, or how
    often, it runs)."""

    words: tuple[Word, ...]
    depth: int
    where: str
    """Why it may not run as written: "inside an `if`", "after `&&`"; empty at the top level."""


class _Scanner:
    """Reads the text once, left to right, into commands."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.commands: list[Command] = []
        self.words: list[Word] = []
        self.blocks: list[str] = []
        self.after = ""  # `&&` or `||` when the command being read runs on a condition
        self.skip_next = False  # the next word is a redirection's target
        self.heredocs: list[tuple[str, bool]] = []  # delimiters whose bodies start next line

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def at(self, chars: str) -> bool:
        """Whether the next character is one of `chars` (never at the end of the text)."""
        c = self.peek()
        return c != "" and c in chars

    def end_command(self) -> None:
        words = self._strip_block_words(self.words)
        if words:
            self.commands.append(self._command(words))
        self.words = []

    def _command(self, words: list[Word]) -> Command:
        depth = len(self.blocks) + (1 if self.after else 0)
        if self.after:
            return Command(tuple(words), depth, f"after `{self.after}`")
        if self.blocks:
            block = self.blocks[-1]
            article = "an" if block[0] in "aeiou" else "a"
            return Command(tuple(words), depth, f"inside {article} `{block}`")
        return Command(tuple(words), 0, "")

    def _strip_block_words(self, words: list[Word]) -> list[Word]:
        """Opens and closes blocks for their keywords; returns the command left after them."""
        while words:
            head = words[0].literal_text()
            if head in _OPEN_BLOCKS:
                self.blocks.append(head)
                if head in ("for", "select", "case"):
                    self._loop_variable(words)
                    return []
            elif head in _CLOSE_BLOCKS:
                if self.blocks:
                    self.blocks.pop()
            elif head == "{":
                self.blocks.append("{ }")
            elif head == "function":
                words = words[2:]  # `function name {`: the body follows
                continue
            elif head not in _BLOCK_WORDS:
                return words
            words = words[1:]
        return words

    def _loop_variable(self, words: list[Word]) -> None:
        """`for d in ...`: `d` takes values only running the loop gives."""
        if len(words) > 1 and words[0].literal_text() in ("for", "select"):
            name = words[1].literal_text() or ""
            if _NAME.fullmatch(name):
                start = words[1].start
                offsets = tuple(range(start, start + len(name) + 1))
                loop = Word(start, words[1].end, [Literal(f"{name}=", offsets)])
                loop.pieces.append(
                    Opaque(f"the loop variable of `{words[0].literal_text()}`", start)
                )
                self.commands.append(self._command([loop]))

    def scan(self) -> list[Command]:
        while self.i < len(self.text):
            c = self.peek()
            if c == "\\" and self.peek(1) == "\n":
                self.i += 2
            elif c in " \t\r":
                self.i += 1
            elif c == "#":
                while self.i < len(self.text) and self.peek() != "\n":
                    self.i += 1
            elif c in ";&|\n":
                self.operator()
            elif c == ")" and self.blocks and self.blocks[-1] == "case":
                self.words = []  # a case arm's pattern
                self.i += 1
            elif c in "()":
                self.end_command()
                if c == "(":
                    self.blocks.append("subshell")
                elif self.blocks:
                    self.blocks.pop()
                self.i += 1
            elif c in "<>" or (c.isdigit() and self._redirection_ahead()):
                self.redirection()
            else:
                word = self.word()
                if self.skip_next:
                    self.skip_next = False
                else:
                    self.words.append(word)
        self.end_command()
        return self.commands

    def operator(self) -> None:
        two = self.text[self.i : self.i + 2]
        if two == "&>":
            self.redirection()
            return
        separator = two if two in _SEPARATORS else self.peek()
        self.i += len(separator)
        self.end_command()
        if separator in _CONDITIONAL:
            self.after = separator
        elif separator != "|":
            self.after = ""
        if separator == "\n":
            self.skip_heredocs()

    def skip_heredocs(self) -> None:
        """The bodies of the `<<EOF` redirections of the line just ended."""
        for delimiter, strip_tabs in self.heredocs:
            while self.i < len(self.text):
                end = self.text.find("\n", self.i)
                end = len(self.text) if end < 0 else end
                line = self.text[self.i : end]
                self.i = end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
        self.heredocs = []

    def _redirection_ahead(self) -> bool:
        j = self.i
        while j < len(self.text) and self.text[j].isdigit():
            j += 1
        return j < len(self.text) and self.text[j] in "<>"

    def redirection(self) -> None:
        """`2>&1`, `> file`, `>> file`, `&> file`: dropped with their target; `<<EOF`: its
        body is skipped after the line."""
        start = self.i
        while self.peek().isdigit() or self.at("<>&"):
            self.i += 1
        if self.text[start : self.i].lstrip("0123456789") == "<<":
            strip_tabs = self.peek() == "-"
            self.i += strip_tabs
            while self.at(" \t"):
                self.i += 1
            delimiter = self.word()
            text = "".join(p.text for p in delimiter.pieces if isinstance(p, Literal))
            self.heredocs.append((text, strip_tabs))
            return
        if (self.text[self.i - 1] == "&" and self.peek().isdigit()) or self.peek() == "-":
            while self.peek().isdigit() or self.peek() == "-":
                self.i += 1  # `>&1`, `>&-`: no target word
            return
        self.skip_next = True

    def word(self) -> Word:
        word = Word(self.i)
        chars: list[str] = []
        offsets: list[int] = []

        def flush() -> None:
            if chars:
                word.pieces.append(Literal("".join(chars), tuple(offsets)))
                chars.clear()
                offsets.clear()

        while self.i < len(self.text):
            c = self.peek()
            if c in " \t\r\n;&|<>()" and not (c == "(" and chars and chars[-1] == "="):
                break
            if c == "(":  # NAME=( ... ): an array
                flush()
                word.pieces.append(Opaque("an array", self.i))
                self.skip_balanced("(", ")")
            elif c == "\\":
                if self.peek(1) == "\n":
                    self.i += 2
                    continue
                word.quoted = True
                if self.i + 1 < len(self.text):
                    chars.append(self.peek(1))
                    offsets.append(self.i + 1)
                self.i += 2
            elif c == "'":
                word.quoted = True
                self.i += 1
                while self.i < len(self.text) and self.peek() != "'":
                    chars.append(self.peek())
                    offsets.append(self.i)
                    self.i += 1
                self.i += 1
            elif c == '"':
                word.quoted = True
                self.i += 1
                while self.i < len(self.text) and self.peek() != '"':
                    d = self.peek()
                    if d == "\\" and self.peek(1) in '$`"\\\n':
                        if self.peek(1) != "\n":
                            chars.append(self.peek(1))
                            offsets.append(self.i + 1)
                        self.i += 2
                    elif d in "$`":
                        flush()
                        word.pieces.append(self.expansion(quoted=True))
                    else:
                        chars.append(d)
                        offsets.append(self.i)
                        self.i += 1
                self.i += 1
            elif c in "$`":
                flush()
                word.pieces.append(self.expansion(quoted=False))
            else:
                chars.append(c)
                offsets.append(self.i)
                self.i += 1
        flush()
        word.end = self.i
        return word

    def expansion(self, quoted: bool) -> Piece:
        start = self.i
        if self.peek() == "`":
            self.i += 1
            while self.i < len(self.text) and self.peek() != "`":
                self.i += 2 if self.peek() == "\\" else 1
            self.i += 1
            return Opaque("a command substitution", start)
        nxt = self.peek(1)
        if nxt == "(":
            self.i += 1
            self.skip_balanced("(", ")")
            return Opaque("a command or arithmetic substitution", start)
        if nxt == "{":
            self.i += 1
            inner_start = self.i + 1
            self.skip_balanced("{", "}")
            inner = self.text[inner_start : self.i - 1]
            if _NAME.fullmatch(inner):
                return Reference(inner, start, quoted)
            return Opaque(f"`${{{inner}}}`", start)
        match = _NAME.match(self.text, self.i + 1)
        if match:
            self.i = match.end()
            return Reference(match.group(0), start, quoted)
        if nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            self.i += 2
            return Opaque(f"`${nxt}`", start)
        self.i += 1
        return Literal("$", (start,))

    def skip_balanced(self, open_: str, close: str) -> None:
        """From an opening bracket to just past its match, stepping over quoted text."""
        depth = 0
        while self.i < len(self.text):
            c = self.peek()
            if c in "'\"":
                end = self.text.find(c, self.i + 1)
                self.i = len(self.text) if end < 0 else end + 1
                continue
            if c == "\\":
                self.i += 2
                continue
            self.i += 1
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return


def split_commands(text: str) -> list[Command]:
    """The simple commands of a shell script's text, in order."""
    return _Scanner(text).scan()


def line_starts(text: str) -> list[int]:
    """The offset where each line of `text` starts."""
    return [0] + [m.end() for m in re.finditer("\n", text)]


def position(starts: list[int], offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset."""
    line = bisect_right(starts, offset)
    return line, offset - starts[line - 1] + 1
