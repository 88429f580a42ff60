"""Large configs: the shortcuts that keep 50,000-line files fast give exactly the answers of
the slow paths they replace (no timings here: the reproducers are profiled by hand)."""

from __future__ import annotations

import difflib
import random
import string

import libcst as cst
import pytest

from gptlint.command.cli import main
from gptlint.lint.rules.keys import _close_match
from gptlint.lint.rules.shape import divisors, keep_width
from gptlint.nanogpt.configfile import parse_config
from gptlint.nanogpt.evaluate import evaluate
from gptlint.nanogpt.schema import NANOGPT_SCHEMA
from gptlint.text.decode import decode_source
from gptlint.text.deep import run_deep


def test_close_match_is_difflibs_answer():
    known = tuple(NANOGPT_SCHEMA.keys)
    rng = random.Random(0)
    words = ["k12345", "", "x", "lr", "n_embed", "learning_rat", "n_layers", "beta", "béta1"]
    for _ in range(3000):
        word = list(rng.choice(known))
        for _ in range(rng.randint(0, 4)):
            at = rng.randrange(len(word) + 1)
            roll = rng.random()
            if roll < 0.4:
                word.insert(at, rng.choice(string.ascii_lowercase + "_19"))
            elif roll < 0.7 and at < len(word):
                del word[at]
            elif at < len(word):
                word[at] = rng.choice(string.ascii_lowercase)
        words.append("".join(word))
    for word in words:
        expected = difflib.get_close_matches(word, list(known), n=1, cutoff=0.8)
        assert _close_match(word, known) == (expected[0] if expected else None), word


@pytest.mark.parametrize("n", [*range(1, 400), 1048575, 1 << 20, 999_983, 720_720])
def test_divisors_are_every_divisor_in_order(n):
    assert list(divisors(n)) == [d for d in range(1, n + 1) if n % d == 0]


@pytest.mark.parametrize(("n_embd", "n_head"), [(1048575, 7), (500, 3), (520, 7), (768, 5)])
def test_keep_width_is_the_nearest_aligned_divisor(n_embd, n_head):
    aligned = [d for d in range(1, n_embd + 1) if n_embd % d == 0 and (n_embd // d) % 8 == 0]
    best = min(aligned, key=lambda d: (abs(d - n_head), abs(n_embd // d - 64)), default=None)
    choice = keep_width(n_embd, n_head)
    assert (choice and choice.n_head) == best


@pytest.mark.parametrize(
    "text",
    [
        *("0", "00", "1_000", "0x_ff", "0o17", "0b1_0", "123456789012345678901234567890"),
        *("1.5", "1_0.5e3", "1e400", ".5", "5.", "'a'", '"b"', "''", "'''x'''", '"""y"""'),
        *("r'\\d'", "'a\\nb'", "b'x'", "'é'", '"it\'s"', "u'x'"),
    ],
)
def test_literals_evaluate_as_python_reads_them(text):
    value = evaluate(cst.parse_expression(text), {})
    assert (value, type(value)) == (eval(text), type(eval(text)))


@pytest.mark.parametrize(
    "text",
    [
        "a = 1; b = 2; c = (3,\n 4); d = 5\n",
        "x = 'é'; y = 2;  z = [1,\n2,\n3] ;w=1\n",
        "if 1: a = 1; b = 2\nq = 1;\n",
        "a = 1;b=2\r\nc=3; d = 'ü' ;e=4\r\n",
        "a=1\\\n; b = 2\n",
        "(a) = 1; (b) = ((2)) # c\n",
        "# head\n\nk = 1;  n_head = 5 ;\tn_embd = 'é' + 'ü'; m: int = 3; m += 1\n",
    ],
)
def test_positions_on_lines_of_joined_statements_match_libcst(text):
    def check() -> None:
        file = parse_config(decode_source("c.py", text.encode()))
        for a in file.assignments:
            for node in (a.target, a.value, a.node):
                if node is not None:
                    assert file.position(node) == file._positions[node]

    run_deep(check)


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("n_embed = 3\n", True),
        ("n_embed = 3\nn_embed = 4\n", True),
        ("n_embed = 3\nx = n_embed\n", False),
        ("n_embed = 3; y = [n_embed]\n", False),
        ("n_embed = 3\ndef f():\n    return n_embed\n", False),
        ("n_embed = 3  # n_embed in a comment is no read\n", True),
    ],
)
def test_unknown_keys_the_file_reads_are_still_skipped(project, capsys, source, reported):
    (project / "c.py").write_text(source)
    main(["--select", "GPT201", "c.py"])
    assert ("GPT201" in capsys.readouterr().out) == reported


def test_many_keys_and_joined_statements_keep_every_diagnostic(project, capsys):
    text = (
        "; ".join(f"k{i} = {i}" for i in range(3000)) + "; n_head = 5; n_embd = 512; n_embed = 3\n"
    )
    (project / "c.py").write_text(text)
    main(["--select", "GPT101,GPT201", "c.py"])
    out = capsys.readouterr().out.splitlines()
    gpt101 = f"c.py:1:{text.index('n_embd =') + 1}: GPT101 n_embd=512 is not divisible by n_head=5"
    assert out[0].startswith(gpt101)
    assert out[2].startswith(f"c.py:1:{text.index('n_embed') + 1}: GPT201 n_embed is not a nanoGPT")


@pytest.mark.parametrize(
    "text",
    [
        "# head\n\nn_layer = 12\nn_head = ( 12 )  # c\nn_embd = 500\n",
        "n_layer = 12\r\nn_head = 12\r\n\r\n# model\r\nn_embd = 500\r\n",
        "n_layer = 12\nn_head = 12; n_embd = 500\n",
        "n_layer = 12\nn_head = 12\nn_embd = 500",
        "n_layer = 12\rn_head = 12\rn_embd = 500\r",
        "n_embed = 3\nlr = 1e-3\ncompile = 0\nx = [\n  1,\n]\nn_head = 12\nn_embd = 500\n",
        "\ufeffa = 'é'\nn_head = 7\nn_embd = 500\nif x:\n    y = 1\n"
        "c = GPTConfig(n_head=3, n_embd=512)\n",
        "n_layer = 12\nn_head = (12 +\n 0)\nn_embd = 500\n# tail\n",
    ],
)
def test_fixes_regenerate_only_their_statements_with_the_same_text(text):
    from gptlint.lint.fix import _Rewriter, apply_fixes, chosen_fixes
    from gptlint.lint.linter import lint_source
    from gptlint.settings.table import Settings

    def check() -> None:
        source = decode_source("c.py", text.encode())
        result = lint_source(source, Settings())
        chosen = chosen_fixes(result.diagnostics, unsafe=True)
        assert chosen
        edits = {edit.old: edit for diagnostic in chosen for edit in diagnostic.fix.edits}
        whole = result.file.module.visit(_Rewriter(edits)).code
        assert apply_fixes(result.file, chosen) == whole

    run_deep(check)
