"""Properties of fixing, over generated configs (hypothesis): realistic keys and values, random
comments, spacing, quote styles, encodings (UTF-8, UTF-8 with BOM, a latin-1 declaration),
line endings, with and without a final newline.

* one pass of fixes changes no byte outside the nodes its edits name;
* after `--fix` the file keeps its BOM, coding declaration, line endings, final newline;
* fixing twice changes nothing;
* positions reported per statement agree with libcst's whole-module positions.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.metadata import MetadataWrapper, PositionProvider, WhitespaceInclusivePositionProvider

from gptlint.command.cli import main
from gptlint.lint.context import LintContext
from gptlint.lint.fix import apply_fixes, chosen_fixes, fix_source
from gptlint.lint.linter import lint_source
from gptlint.nanogpt.resolve import resolve
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source

ALL = Settings(select=("ALL",))
DEFAULT = Settings()
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMBERS = {
    "batch_size": ("4", "12", "16", "64", "12.0"),
    "block_size": ("256", "1024", "2048", "512 * 2"),
    "gradient_accumulation_steps": ("5 * 8", "1", "4", "3", "32"),
    "max_iters": ("5000", "600000", "2 * 1000"),
    "lr_decay_iters": ("max_iters", "5000", "600000", "max_iters + 1"),
    "warmup_iters": ("100", "2000", "max_iters"),
    "eval_interval": ("250", "2000", "1_000_000"),
    "learning_rate": ("6e-4", "1e-3", "3e-5"),
    "min_lr": ("learning_rate / 10", "6e-5", "1e-2"),
    "dropout": ("0.0", "0.2", "0", "1.5"),
    "weight_decay": ("1e-1", "0"),
    "compile": ("True", "False"),
    "bias": ("True", "False"),
    "vocab_size": ("50257", "50304", "65"),
    "n_layer": ("2", "6", "12", "(12)"),
    "n_head": ("1", "5", "6", "8", "12", "16", "25"),
    "n_embd": ("64", "384", "500", "512", "768", "1000", "64 * 9"),
    "n_embed": ("576",),
    "n_kv_head": ("4", "5"),
}
WORDS = {
    "dataset": ("shakespeare_char", "openwebtext", "fineweb"),
    "init_from": ("scratch", "resume", "gpt2", "gpt2-medium", "gtp2", "scrach"),
    "dtype": ("bfloat16", "float16", "float32", "bf16", "fp16"),
    "out_dir": ("out", "out-shakespeare-char"),
    "wandb_run_name": ("mini-gpt", "run #1"),
}
COMMENT_CHARS = {
    "utf-8": "abcxyz 0123:=-'\"é—ü",
    "utf-8-sig": "abcxyz 0123:=-'\"é—ü",
    "latin-1": "abcxyz 0123:=-'\"éü£",
}


@st.composite
def config_files(draw) -> bytes:
    """A config's bytes."""
    encoding = draw(st.sampled_from(sorted(COMMENT_CHARS)))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    comment = st.text(COMMENT_CHARS[encoding], max_size=20).map(lambda t: "#" + t.rstrip())
    space = st.sampled_from(["", " ", "  "])
    lines = ["# -*- coding: latin-1 -*-"] if encoding == "latin-1" else []
    kinds = st.sampled_from(
        ["blank", "comment", "number", "number", "number", "word", "call", "block", "import"]
    )
    for kind in draw(st.lists(kinds, min_size=1, max_size=25)):
        if kind == "blank":
            lines.append("")
            continue
        if kind == "comment":
            lines.append(draw(comment))
            continue
        if kind == "call":
            lines.extend(draw(shape_call()))
            continue
        if kind == "block":
            lines += ["if big:", f"    n_embd = {draw(st.sampled_from(NUMBERS['n_embd']))}"]
            continue
        if kind == "import":
            lines.append(draw(st.sampled_from(["import time", "import os; n_layer = 6"])))
            continue
        if kind == "number":
            key = draw(st.sampled_from(sorted(NUMBERS)))
            value = draw(st.sampled_from(NUMBERS[key]))
        else:
            key = draw(st.sampled_from(sorted(WORDS)))
            quote = draw(st.sampled_from(["'", '"']))
            value = quote + draw(st.sampled_from(WORDS[key])) + quote
        line = f"{key}{draw(space)}={draw(space)}{value}"
        if draw(st.booleans()):
            line += draw(st.sampled_from(["  ", " ", "\t"])) + draw(comment)
        lines.append(line)
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    return text.encode(encoding)


@st.composite
def shape_call(draw) -> list[str]:
    """A `GPTConfig(...)` call or a `dict(...)` preset, on one line or several, with or without
    a trailing comma, now and then with comments inside the brackets; some keywords left out,
    so that a fix has to add one."""
    keys = draw(st.lists(st.sampled_from(["n_layer", "n_head", "n_embd"]), unique=True))
    args = [f"{key}={draw(st.sampled_from(NUMBERS[key]))}" for key in keys]
    callee = draw(st.sampled_from(["GPTConfig", "dict"]))
    comma = "," if args and draw(st.booleans()) else ""
    if draw(st.booleans()):
        return [f"cfg = {callee}({', '.join(args)}{comma})"]
    inner = ["    # the shape"] if draw(st.booleans()) else []  # comments inside the brackets
    ends = st.sampled_from(["", "", "  # from the paper"])
    return [f"cfg = {callee}(", *inner, *(f"    {arg},{draw(ends)}" for arg in args), ")"]


def _offsets(text: str) -> list[int]:
    """Offset of the start of each line (line 1 first), for generated text (\\n or \\r\\n);
    one more line at the end, where libcst ends the last line of a file without a newline."""
    starts = [0]
    starts += [m.end() for m in re.finditer(r"\r\n|\n", text)]
    return [*starts, len(text)]


def _spans(file, diagnostics) -> list[tuple[int, int]]:
    """The character spans of the nodes the fixes' edits name, whitespace they own included,
    merged where they overlap."""
    ranges = MetadataWrapper(file.module, unsafe_skip_copy=True).resolve(
        WhitespaceInclusivePositionProvider
    )
    starts = _offsets(file.source.text)
    spans = []
    for diagnostic in diagnostics:
        for edit in diagnostic.fix.edits:
            where = ranges[edit.old]
            begin = starts[where.start.line - 1] + where.start.column
            spans.append((begin, starts[where.end.line - 1] + where.end.column))
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def _outside(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The pieces of `text` between the spans, in order."""
    pieces, position = [], 0
    for begin, end in spans:
        pieces.append(text[position:begin])
        position = end
    pieces.append(text[position:])
    return pieces


@PROPERTY
@given(config_files())
def test_one_pass_changes_no_byte_outside_its_targets(raw):
    source = decode_source("config/c.py", raw)
    result = lint_source(source, ALL)
    chosen = chosen_fixes(result.diagnostics, unsafe=True)
    if result.file is None or not chosen:
        return
    before, after = source.text, apply_fixes(result.file, chosen)
    if not re.search(r"\n\Z", before):  # libcst ends the last line, whichever it is, bare
        newline = "\r\n" if "\r\n" in before else "\n"
        before, after = before + newline, after + newline
    pieces = _outside(before, _spans(result.file, chosen))
    assert after.startswith(pieces[0]) and after.endswith(pieces[-1])
    position = len(pieces[0])
    for piece in pieces[1:-1]:  # every untouched stretch survives, in order
        found = after.find(piece, position)
        assert found >= 0, (piece, after)
        position = found + len(piece)


def _newlines(raw: bytes) -> set[bytes]:
    return set(re.findall(rb"\r\n|(?<!\r)\n", raw))


@pytest.mark.slow
@PROPERTY
@given(config_files(), st.booleans())
def test_fix_keeps_encoding_newlines_and_is_idempotent(raw, unsafe):
    source = decode_source("config/c.py", raw)
    outcome = fix_source(source, DEFAULT, unsafe)
    fixed = outcome.fixed
    assert fixed.startswith(b"\xef\xbb\xbf") == raw.startswith(b"\xef\xbb\xbf")
    first_line = raw.split(b"\n", 1)[0]
    if b"coding" in first_line:
        assert fixed.startswith(first_line + b"\n")
    if _newlines(raw):
        assert _newlines(fixed) <= _newlines(raw)
    assert fixed.endswith(b"\n") == raw.endswith(b"\n")
    again = fix_source(decode_source("config/c.py", fixed), DEFAULT, unsafe)
    assert again.fixed == fixed


@PROPERTY
@given(config_files())
def test_positions_agree_with_whole_module_positions(raw):
    result = lint_source(decode_source("config/c.py", raw), ALL)
    file = result.file
    whole = MetadataWrapper(file.module, unsafe_skip_copy=True).resolve(PositionProvider)
    nodes = [a.target for a in file.assignments] + [a.value for a in file.assignments if a.value]
    for node in nodes:
        assert file.position(node) == whole[node]


class _Comments(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.Comment] = []

    def visit_Comment(self, node: cst.Comment) -> None:
        self.found.append(node)


@PROPERTY
@given(config_files())
def test_the_comments_rules_read_are_every_comment_in_file_order(raw):
    """Rules read comments (claims, launch commands) from the statements that can hold them;
    that is every comment node a walk of the whole module finds, in the same order."""
    file = lint_source(decode_source("config/c.py", raw), ALL).file
    walk = _Comments()
    file.module.visit(walk)
    ctx = LintContext(resolve(file), ALL)
    assert [node for node, _ in ctx.comment_nodes if isinstance(node, cst.Comment)] == walk.found


@settings(max_examples=40, deadline=None)
@given(config_files())
def test_cli_fix_writes_what_the_fix_engine_computes(raw):
    expected = fix_source(decode_source("c.py", raw), DEFAULT).fixed
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.py"
        path.write_bytes(raw)
        path.chmod(0o640)
        main(["--fix", "--output-format", "json", str(path)])
        assert path.read_bytes() == expected
        assert path.stat().st_mode & 0o777 == 0o640


@st.composite
def wrapped_numbers(draw, values: tuple[str, ...]) -> str:
    """A number as a config may write it: bare, in parentheses (nested, spaced, split over
    lines with comments inside), with a sign kept."""
    text = draw(st.sampled_from(values))
    for _ in range(draw(st.integers(0, 2))):
        inside = draw(st.sampled_from(["", " ", "\n    ", "  # inner é\n    "]))
        after = draw(st.sampled_from(["", " ", "  # after\n", "\n"]))
        text = f"({inside}{text}{after})"
    return text


@st.composite
def shape_files(draw) -> tuple[str, bool]:
    """A config (text) whose top level sets n_layer, n_head and n_embd once each, in a random
    order and layout, the values wrapped in parentheses and comments, and whether to fix it
    with the keep-heads strategy."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = []
    values = {"n_layer": ("2", "12"), "n_head": ("5", "12", "25"), "n_embd": ("500", "512", "700")}
    for key in draw(st.permutations(sorted(values))):
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["# a comment", "", "dataset = 'owt'  # d"])))
        value = draw(wrapped_numbers(values[key]))
        comment = draw(st.sampled_from(["", "  # c", "\t#x"]))
        lines.append(f"{key}{draw(st.sampled_from(['=', ' = ']))}{value}{comment}")
    if draw(st.booleans()):
        head = draw(wrapped_numbers(("5",)))
        lines.append(f"cfg = GPTConfig(n_layer=2, n_head={head}, n_embd=(512))")
    text = newline.join(lines).replace("\n", newline) + draw(st.sampled_from(["", newline]))
    return text, draw(st.booleans())


def _masked(text: str) -> str:
    return re.sub(r"\d+", "0", text)


@PROPERTY
@given(shape_files())
def test_fix_changes_no_byte_outside_the_numbers_it_targets(case):
    text, keep_heads = case
    strategy = "keep-heads" if keep_heads else "keep-width"
    source = decode_source("config/c.py", text.encode())
    outcome = fix_source(source, Settings(select=("GPT101",), fix_strategy=strategy))
    fixed = outcome.fixed.decode()
    assert _masked(fixed) == _masked(text)  # every comment, parenthesis, space, newline kept
