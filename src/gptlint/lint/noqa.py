"""`# noqa` comments: which findings a comment suppresses, in a config (Python) or a run
script (shell). The comment's grammar is one for both: `# noqa` suppresses every finding of
its line, `# noqa: GPT101, GPT203` those codes."""

from __future__ import annotations

import re

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", re.I)


def suppresses(match: re.Match[str], code: str) -> bool:
    """Whether the `# noqa` comment `match` (of `NOQA`) suppresses a finding of `code`."""
    codes = match.group("codes")
    return codes is None or code in {c.strip().upper() for c in codes.split(",")}


def shell_comment(line: str) -> str | None:
    """The comment of one line of a shell script: from a `#` that starts a word (at the start
    of the line or after a blank), outside quotes, to the end; None where there is none."""
    quote = None
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t;"):
            return line[i:]
    return None


def script_suppressed(lines: list[str], line: int, code: str) -> bool:
    """Whether a run script's `# noqa` suppresses a finding of `code` reported at `line`
    (1-based): the comment stands on that line or, where the command goes on with `\\`
    continuations, on the command's last line (a continued line cannot hold a comment)."""
    index = line - 1
    while 0 <= index < len(lines):
        text = lines[index].rstrip("\r\n")
        comment = shell_comment(text)
        match = NOQA.match(comment) if comment is not None else None
        if match is not None and suppresses(match, code):
            return True
        if not text.endswith("\\"):
            return False
        index += 1
    return False
