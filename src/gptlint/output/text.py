"""Human-readable output: `path:line:col: CODE message`, how to fix it, and a summary."""

from __future__ import annotations

from collections import Counter

from gptlint.facts.kinds import FixSafety
from gptlint.lint.diagnostics import Diagnostic
from gptlint.lint.edits import FixEdits
from gptlint.lint.rules import RULES_BY_CODE


def render(diagnostics: list[Diagnostic], edits: FixEdits | None = None) -> str:
    """One line per diagnostic, with an indented `fix:` line and the command that applies it
    where a fix exists."""
    lines = []
    for d in diagnostics:
        lines.append(str(d))
        if d.fix is not None:
            flag = "--fix" if d.fix.safety == FixSafety.SAFE else "--fix --unsafe-fixes"
            lines.append(f"  fix: {d.fix.description} (gptlint {flag})")
    return "".join(line + "\n" for line in lines)


def summary(diagnostics: list[Diagnostic], fixed: int = 0, unsafe_fixes: bool = False) -> str:
    """`Found 2 problems (1 fixable with `gptlint --fix`).` or `All checks passed!`."""
    parts = []
    if fixed:
        parts.append(f"Fixed {fixed} {'problem' if fixed == 1 else 'problems'}.")
    if not diagnostics:
        return " ".join([*parts, "All checks passed!"]) + "\n"
    n = len(diagnostics)
    safe = sum(1 for d in diagnostics if d.fix is not None and d.fix.safety == FixSafety.SAFE)
    unsafe = sum(1 for d in diagnostics if d.fix is not None and d.fix.safety != FixSafety.SAFE)
    hints = []
    if unsafe_fixes and safe + unsafe:
        hints.append(f"{safe + unsafe} fixable with `gptlint --fix --unsafe-fixes`")
    else:
        if safe:
            hints.append(f"{safe} fixable with `gptlint --fix`")
        if unsafe and safe:
            hints.append(f"{unsafe} more with `--unsafe-fixes`")
        elif unsafe:
            hints.append(f"{unsafe} fixable with `gptlint --fix --unsafe-fixes`")
    found = f"Found {n} {'problem' if n == 1 else 'problems'}"
    found += f" ({', '.join(hints)})." if hints else "."
    return " ".join([*parts, found]) + "\n"


def statistics(diagnostics: list[Diagnostic]) -> str:
    """Counts per code, most frequent first, with `[*]` where a fix exists."""
    counts = Counter(d.code for d in diagnostics)
    fixable = {d.code for d in diagnostics if d.fix is not None}
    rows = []
    for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        marker = "[*]" if code in fixable else "   "
        rows.append(f"{count:>5}  {code}  {marker} {RULES_BY_CODE[code].name}")
    return "".join(row + "\n" for row in rows)
