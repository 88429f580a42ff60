"""Large configs: the shortcuts that keep 50,000-line files fast give exactly the answers of
the slow paths they replace (no timings here: the reproducers are profiled by hand)."""

from __future__ import annotations

import difflib
import random
import re
import string

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        assert chosen and result.file is not None
        edits = {e.old: e for d in chosen if d.fix is not None for e in d.fix.edits}
        whole = result.file.module.visit(_Rewriter(edits)).code
        assert apply_fixes(result.file, chosen) == whole

    run_deep(check)


# Re-reading in part and looking for names in part: the shortcuts change no answer
#
# A fix pass's text is read again by parsing only the statements it changed (reread.Reparser);
# the names a file reads (GPT201, GPT204) and its GPTConfig/dict presets are looked for only in
# the statements whose text can hold them (positions.statements_matching). Each is checked
# against the long way, over generated configs.

HELPER_LINES = (
    "aux_{n} = {v}",
    "aux_{n} = aux_{m} * 2 + {v}",  # reads a helper
    "aux_{n} = os.aux_{m}",  # an attribute named like a helper: not a read
    "aux_{n} = dict(aux_{m}=1)",  # a keyword named like one: not a read
    "aux_{n} = 'aux_{m}'",  # in a string: not a read
    "# aux_{m} in a comment",
    "",
    "a_{n} = 1; aux_{n} = aux_{m}",
    "if aux_{m}:\n    n_head = 8",
    "def aux_{n}():\n    return aux_{m}",
    "aux_{n} = [\n    aux_{m},  # c\n    {v},\n]",
    "cfg_{n} = dict(n_layer=4, n_head={h}, n_embd=500)",
    "cfg_{n} = {{'n_layer': 4, 'n_head': {h}, 'n_embd': 500}}",
    "conf_{n} = GPTConfig(n_layer=4, n_head={h}, n_embd=500)",
    "n_head = {h}",
    "n_embd = 500  # heads of {h}",
    "n_embed = 576",
    "learning_rat = 1e-3",
    "weight_decay = 0",
    "compile = 0",
)


@st.composite
def helper_configs(draw) -> str:
    """A config of helper values that read each other (or only seem to), presets, blocks and
    findings with fixes, in LF or CRLF."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["import os", "n_layer = 12"]
    for n, template in enumerate(draw(st.lists(st.sampled_from(HELPER_LINES), max_size=30))):
        m = draw(st.integers(0, n + 2))
        h = draw(st.sampled_from([6, 8, 12]))
        lines.append(template.format(n=n, m=m, v=draw(st.integers(0, 99)), h=h))
    return newline.join(lines).replace("\n", newline) + newline


def _shown(result) -> list[tuple]:
    return [
        (d.code, d.line, d.col, d.end_line, d.end_col, d.message, d.fix and d.fix.description)
        for d in result.diagnostics
    ]


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(helper_configs(), st.booleans())
def test_large_file_shortcuts_give_the_same_findings_and_fixes(text, unsafe):
    from unittest import mock

    from gptlint.lint.fix import fix_source
    from gptlint.lint.linter import lint_source
    from gptlint.lint.rules import keys
    from gptlint.nanogpt import configfile
    from gptlint.settings.table import Settings
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep
    from gptlint.text.reread import Reparser

    settings_ = Settings(select=("ALL",))
    config = decode_source("c.py", text.encode())

    def run():
        result = lint_source(config, settings_)
        outcome = fix_source(config, settings_, unsafe)
        return _shown(result), outcome.fixed, outcome.applied, _shown(outcome.remaining)

    quick = run_deep(run)
    with (
        mock.patch.object(configfile, "statements_matching", return_value=None),
        mock.patch.object(keys, "statements_matching", return_value=None),
        mock.patch.object(Reparser, "reread", return_value=None),
    ):
        slow = run_deep(run)
    assert quick == slow


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(helper_configs())
def test_a_fix_pass_read_again_in_part_is_libcsts_tree_of_the_whole_text(text):
    import libcst as cst

    from gptlint.lint.fix import apply_fixes, chosen_fixes
    from gptlint.lint.linter import lint_source
    from gptlint.settings.table import Settings
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep
    from gptlint.text.reread import Reparser
    from gptlint.text.syntax import check_syntax
    from gptlint.text.tree import parse_module

    def check():
        result = lint_source(decode_source("c.py", text.encode()), Settings())
        chosen = chosen_fixes(result.diagnostics, unsafe=True)
        if result.file is None or not chosen:
            return
        file = result.file
        fixed = apply_fixes(file, chosen)
        reparser = Reparser(file.source.text, file.module, file.statement_lines)
        reread = parse_module(check_syntax(fixed), reparser)
        assert reread.deep_equals(cst.parse_module(fixed))
        assert reread.code == fixed

    run_deep(check)


def test_a_fix_pass_reads_again_only_the_statements_it_changed():
    from gptlint.lint.fix import apply_fixes, chosen_fixes
    from gptlint.lint.linter import lint_source
    from gptlint.settings.table import Settings
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep
    from gptlint.text.reread import Reparser
    from gptlint.text.syntax import check_syntax
    from gptlint.text.tree import parse_module

    helpers = "".join(f"aux_{n} = aux_{n - 1} + 1  # {n}\n" for n in range(1, 2000))
    text = f"aux_0 = 1\n{helpers}n_layer = 12\nn_head = 12\n\n# width\nn_embd = 500\n{helpers}"

    def fix_pass():
        result = lint_source(decode_source("c.py", text.encode()), Settings())
        file = result.file
        fixed = apply_fixes(file, chosen_fixes(result.diagnostics, unsafe=False))
        reparser = Reparser(file.source.text, file.module, file.statement_lines)
        return file.module, parse_module(check_syntax(fixed), reparser), fixed

    before, after, fixed = run_deep(fix_pass)
    assert fixed == text.replace("n_embd = 500", "n_embd = 480")
    kept = [old is new for old, new in zip(before.body, after.body, strict=True)]
    assert kept.count(False) == 1 and after.code == fixed


def test_statements_matching_counts_words_per_statement():
    from gptlint.text.positions import statements_matching

    text = "# a b\nx = a\ny = (\n    a + b\n)  # a\n\n# b\ndef f():\n    return b\n"
    found = statements_matching(text, [2, 3, 8], 3, re.compile(r"\w+"), {"a", "b"})
    assert found == {0: {"a": 1}, 1: {"a": 2, "b": 2}, 2: {"b": 1}}  # "# b" is before 2
    assert statements_matching(text, [2, 3], 3, re.compile(r"\w+")) is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(helper_configs())
def test_the_names_a_file_reads_are_what_libcsts_visitor_finds(text):
    import libcst as cst

    from gptlint.lint.rules.keys import _collect_names
    from gptlint.nanogpt.configfile import parse_config
    from gptlint.text.decode import decode_source
    from gptlint.text.deep import run_deep

    class Visitor(cst.CSTVisitor):  # how GPT201 and GPT204 found them before
        def __init__(self, targets):
            self.targets, self.names = targets, set()

        def visit_Name(self, node):
            if id(node) not in self.targets:
                self.names.add(node.value)

        def visit_Attribute(self, node):
            node.value.visit(self)
            return False

        def visit_Arg(self, node):
            node.value.visit(self)
            return False

    def both():
        file = parse_config(decode_source("c.py", text.encode()))
        targets = {id(a.target) for a in file.assignments}
        visitor, walked = Visitor(targets), set()
        file.module.visit(visitor)
        _collect_names(file.module, targets, walked)
        return visitor.names, walked

    visited, walked = run_deep(both)
    assert walked == visited


STATEMENTS = (
    "x = 1",
    "y = (1 +\n     2)  # c",
    "z = 3; w = 4",
    "a = [\n  1,\n]",
    "if a:\n    b = 1\n    # in the block\n# after it",
    "def f():\n    return 1",
    "@d\ndef g():\n    pass",
    "s = 'a' \\\n    'b'",
    "\f\nq = 5",
    "\t# a tab",
    "",
    "# comment",
    "n = 12  # trailing",
    "class C:\n\tx = 1",
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=12),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_a_text_read_again_in_part_is_libcsts_tree_of_it(statements, newline, final, random):
    """Any one digit changed anywhere: where a `Reparser` answers, its tree is the one libcst
    gives for the whole text."""
    import libcst as cst

    from gptlint.text.decode import SourceError
    from gptlint.text.positions import statement_lines
    from gptlint.text.reread import Reparser
    from gptlint.text.syntax import check_syntax
    from gptlint.text.tree import parse_module

    text = "\n".join(statements).replace("\n", newline) + (newline if final else "")
    digits = [i for i, char in enumerate(text) if char.isdigit()]
    if not digits:
        return
    at = random.choice(digits)
    changed = text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1 :]
    try:
        before, after = check_syntax(text), check_syntax(changed)
    except SourceError:
        return
    module = cst.parse_module(text)
    reread = parse_module(after, Reparser(text, module, statement_lines(before.tree)))
    assert reread.deep_equals(cst.parse_module(changed))
