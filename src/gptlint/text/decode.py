"""A config file's bytes decoded into text as Python would, and text encoded back in the same
encoding; SourceError for a file that cannot be read as Python source."""

from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass
from functools import cached_property

from gptlint.text.files import MAX_SOURCE_BYTES, FileTooLarge, read_regular
from gptlint.text.positions import LINE_END


class SourceError(Exception):
    """The file cannot be read as Python source; `line`/`col` locate the problem (1-based)."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass(frozen=True)
class Source:
    """A config file's text with what is needed to write it back byte for byte."""

    path: str
    raw: bytes
    text: str
    encoding: str

    def encode(self, text: str) -> bytes:
        """`text` in this file's encoding (a UTF-8 BOM is kept by the `utf-8-sig` codec)."""
        return text.encode(self.encoding)

    def line_text(self, line: int) -> str:
        """The text of 1-based `line`, without its line ending ('' past the end)."""
        lines = self._lines
        return lines[line - 1] if 0 < line <= len(lines) else ""

    @cached_property
    def _lines(self) -> list[str]:
        # Python ends lines at \r\n, \r and \n only; str.splitlines also splits at form
        # feeds and other separators, which would shift every line number after them.
        return LINE_END.split(self.text)


def _too_large_to_lint(size: int) -> str:
    return (
        f"file too large to lint ({size:,} bytes; gptlint reads configs of up to"
        f" {MAX_SOURCE_BYTES:,} bytes)"
    )


def unread_reason(exc: OSError) -> str:
    """Why `read_regular` read no config, for a GPT000 message: too large (with the file's own
    size), or the system's reason."""
    if isinstance(exc, FileTooLarge):
        return _too_large_to_lint(exc.size)
    return f"cannot read file: {exc.strerror or exc}"


def decode_source(path: str, raw: bytes) -> Source:
    """Decode `raw` as Python would (BOM, PEP 263 coding declaration, else UTF-8).

    Raises SourceError for binary files, unknown or wrong encodings, naming the line.
    """
    if len(raw) > MAX_SOURCE_BYTES:
        raise SourceError(_too_large_to_lint(len(raw)))
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise SourceError("binary file (contains a NUL byte), not a Python config", line)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise SourceError(f"bad coding declaration: {exc}", exc.lineno or 1) from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SourceError(
            f"cannot decode byte 0x{raw[exc.start]:02x} as {encoding}"
            " (save the file as UTF-8 or declare its encoding)",
            line,
            col,
        ) from None
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r} in coding declaration") from None
    return Source(path=path, raw=raw, text=text, encoding=encoding)


def read_source(path: str) -> Source:
    """Read and decode the file at `path`; OSError becomes SourceError."""
    try:
        raw = read_regular(path)
    except OSError as exc:
        raise SourceError(unread_reason(exc)) from None
    return decode_source(path, raw)
