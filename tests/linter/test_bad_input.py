"""Bad input never crashes gptlint. For any file, folder, setting or value it gives a correct
result or a clear one-line error naming the file (and line), with exit code 2: never a
traceback, a hang or a half-written file, and a broken file does not stop the others from
being linted.

1. Files that are not Python gptlint can read: GPT000 at its line.
2. Source too deep or too long: accepted where CPython accepts it, else GPT000 at its line.
3. Values too large to evaluate: bounded, and named where a rule needs them.
4. Any value a config can hold: no rule crashes or hangs, and fixes converge.
5. Paths and folders that name no config.
6. Settings and options: one line naming the file and line, or the option.
7. Data files gptlint reads (meta.pkl): bounded before anything is built.
8. A bug in gptlint: named with the file, the other files still linted.

Elsewhere: the file system working against gptlint (FIFOs, devices, permissions, links, a
`--fix` killed or raced by another writer) is test_hostile_filesystem.py; hostile checkpoints
test_checkpoint.py; command-line usage errors test_cli.py; `--set` values nanoGPT would reject
test_memory_check_coverage.py; the plugin's bad input tests/plugin/test_plugin_bad_input.py.
"""

from __future__ import annotations

import os
import pickle
import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapecheck import gptlint, gptlint_process

from gptlint.command.cli import main
from gptlint.facts.units import parse_memory
from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_source
from gptlint.lint.rules import ALL_RULES
from gptlint.lint.rules.shape import EmbdNotDivisibleByHeads
from gptlint.nanogpt.metadata import MetaError, read_meta_vocab
from gptlint.nanogpt.schema import KV_HEAD_KEYS, NANOGPT_DEFAULTS
from gptlint.settings.table import Settings
from gptlint.text.decode import decode_source

BROKEN = "n_layer = 12\nn_head = (12\nn_embd = 512\n"
SHAPE = "n_layer = 12\nn_head = 12\nn_embd = 512\n"


def main_output(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# 1. Files that are not Python gptlint can read: GPT000 at its line, the others still linted


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (
            b"n_layer = 12\nn_head = (12\nn_embd = 512\n",
            "a.py:2:10: GPT000 syntax error: '(' was never closed",
        ),
        (b"n_layer = = 12\n", "a.py:1:11: GPT000 syntax error: invalid syntax"),
        (b"n_layer = 12\n  n_head = 8\n", "a.py:2:2: GPT000 syntax error: unexpected indent"),
        (
            b"dataset = 'owt\n",
            "a.py:1:11: GPT000 syntax error: unterminated string literal (detected at line 1)",
        ),
        (
            b"n_layer = 12\n# caf\xe9\n",
            "a.py:2:6: GPT000 cannot decode byte 0xe9 as utf-8"
            " (save the file as UTF-8 or declare its encoding)",
        ),
        (
            b"\x7fELF\x02\x01\x01\x00\x00",
            "a.py:1:1: GPT000 binary file (contains a NUL byte), not a Python config",
        ),
        (
            b"# -*- coding: klingon -*-\nn_layer = 12\n",
            "a.py:1:1: GPT000 bad coding declaration: unknown encoding: klingon",
        ),
        (
            b"x = " + b"(" * 300 + b"1" + b")" * 300 + b"\n",
            "a.py:1:205: GPT000 syntax error: too many nested parentheses",
        ),
    ],
    ids=["unclosed", "invalid", "indent", "string", "undecodable", "binary", "encoding", "parens"],
)
def test_unreadable_file_is_one_line_and_the_others_are_still_linted(
    project, capsys, content, line
):
    (project / "a.py").write_bytes(content)
    (project / "b.py").write_text(SHAPE)
    code, out, err = gptlint(capsys, "a.py", "b.py")
    assert code == 2
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == line
    assert lines[1].startswith("b.py:3:1: GPT101 n_embd=512 is not divisible by n_head=12")
    assert lines[-1] == "Found 2 problems (1 fixable with `gptlint --fix`)."


def test_json_output_carries_the_unreadable_file(project, capsys):
    (project / "a.py").write_text(BROKEN)
    code, out, _ = gptlint(capsys, "--output-format", "json", "a.py")
    assert code == 2
    assert '"code": "GPT000"' in out and '"row": 2' in out


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("return 5\n", "1:1: GPT000 syntax error: 'return' outside function"),
        ("yield 5\n", "1:1: GPT000 syntax error: 'yield' outside function"),
        ("await x\n", "1:1: GPT000 syntax error: 'await' outside function"),
        ("nonlocal x\n", "1:1: GPT000 syntax error: nonlocal declaration not allowed at module level"),  # noqa: E501
        ("def f(a, a): pass\n", "1:10: GPT000 syntax error: duplicate argument 'a' in function definition"),  # noqa: E501
        ("x = 1\nfrom __future__ import annotations\n", "2:1: GPT000 syntax error: from __future__ imports must occur at the beginning of the file"),  # noqa: E501
        ("from __future__ import braces\n", "1:1: GPT000 syntax error: not a chance"),
        ("from __future__ import nope\n", "1:1: GPT000 syntax error: future feature nope is not defined"),  # noqa: E501
        ("def f():\n    x = 1\n    global x\n", "3:5: GPT000 syntax error: name 'x' is assigned to before global declaration"),  # noqa: E501
        ("*a\n", "1:1: GPT000 syntax error: can't use starred expression here"),
    ],
)  # fmt: skip
def test_files_python_would_not_compile_are_gpt000(project, capsys, source, message):
    (project / "c.py").write_text(source)
    code, out, err = gptlint(capsys, "c.py")
    assert (code, out.splitlines()[0], err) == (2, "c.py:" + message, "")


def test_a_huge_file_is_one_clear_error(project, capsys):
    (project / "c.py").write_text("x = [" + "0, " * 700_000 + "]\n")
    code, out, _ = gptlint(capsys, "c.py")
    assert code == 2
    assert out.splitlines()[0] == (
        "c.py:1:1: GPT000 file too large to lint (2,100,007 bytes; gptlint reads configs of up to"
        " 2,000,000 bytes)"
    )


@pytest.mark.parametrize("named", ["c.py", "config"])
def test_a_1_gib_file_is_refused_with_its_own_size(project, capsys, named):
    (project / "config").mkdir()
    with open(project / "config" / "c.py", "wb") as sparse:
        sparse.truncate(2**30)
    code, out, _ = gptlint(capsys, "config/c.py" if named == "c.py" else "config")
    assert code == 2
    assert out.splitlines()[0] == (
        "config/c.py:1:1: GPT000 file too large to lint (1,073,741,824 bytes; gptlint reads"
        " configs of up to 2,000,000 bytes)"
    )


def test_names_are_nfkc_normalised(project, capsys):
    (project / "c.py").write_text("n_layer = 12\n\uff4e_head = 5\nn_embd = 512\n")
    _, out, _ = gptlint(capsys, "--select", "ALL", "c.py")
    assert "GPT201" not in out
    assert "n_embd=512 is not divisible by n_head=5" in out


def test_a_forks_gptconfig_with_a_method_and_a_too_long_dataset_name(tmp_path, capsys):
    from gptlint.command.cli import main as run_cli

    (tmp_path / ".git").mkdir()
    (tmp_path / "train.py").write_text("exec(open('configurator.py').read())\n")
    (tmp_path / "model.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass GPTConfig:\n"
        "    n_head: int = 12\n    n_embd: int = 768\n\n"
        "    def __post_init__(self):\n        assert self.n_embd % self.n_head == 0\n"
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.py").write_text("cfg = GPTConfig(n_layer=6, n_head=6, n_embd=500)\n")
    (config / "b.py").write_text(f"dataset = '{'a' * 5000}'\nn_layer = 6\n")
    code = run_cli([str(config)])
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err
    assert "a.py:1:" in out and "GPT101 n_embd=500 is not divisible by n_head=6" in out
    assert code == 1


@pytest.mark.parametrize("content", ["", "# only a comment\n", '"""A docstring."""\n', "\n\n"])
def test_a_config_that_sets_nothing_is_clean(project, capsys, content):
    (project / "c.py").write_text(content)
    assert main(["--fix", "--unsafe-fixes", "c.py"]) == 0
    assert capsys.readouterr() == ("All checks passed!\n", "")
    assert (project / "c.py").read_text() == content


# 2. Source too deep or too long: accepted where CPython accepts it, else GPT000 at its line


def test_50000_term_expression_is_a_clean_gpt000(project):
    (project / "deep.py").write_text("n_embd = " + "+".join(["1"] * 50_000) + "\n")
    (project / "b.py").write_text(SHAPE)
    result = gptlint_process("deep.py", "b.py", cwd=project, timeout=300)  # a hang fails
    assert result.returncode == 2, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0].startswith("deep.py:1:")
    assert "GPT000 expression nested" in result.stdout.splitlines()[0]
    assert "b.py:3:1: GPT101" in result.stdout


@pytest.mark.parametrize(
    "expression",
    [
        "-" * 20_000 + "1",
        "f" + "()" * 5_000,
        "a" + ".b" * 5_000,
        "1 if a else " * 3_000 + "1",
    ],
    ids=["unary", "calls", "attributes", "conditionals"],
)
def test_other_deep_nesting_is_a_clean_gpt000(project, expression):
    (project / "deep.py").write_text(f"n_embd = {expression}\n")
    result = gptlint_process("deep.py", cwd=project)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ""
    assert "deep.py:1:" in result.stdout and "GPT000" in result.stdout


def test_nesting_below_the_limit_is_linted_and_fixed(project, capsys):
    path = project / "c.py"
    path.write_text("n_head = 12\nn_embd = " + " + ".join(["4"] * 128) + "  # 512\n")
    code, out, _ = gptlint(capsys, "c.py")
    assert code == 1 and "n_embd=512 is not divisible by n_head=12" in out
    assert gptlint(capsys, "--fix", "--fix-strategy", "keep-heads", "c.py")[0] == 0
    assert path.read_text() == "n_head = 12\nn_embd = 480  # 512\n"


@pytest.mark.parametrize(
    "source",
    [
        "x = " + " ".join(["'a'"] * 2000) + "\n",
        "x = " + " or ".join(["a"] * 2000) + "\n",
        "x = " + " and ".join(["a"] * 2000) + "\n",
        "x = " + " ".join(["f'{1}'"] * 2000) + "\n",
        "x = " + " + ".join(["1"] * 250) + "\n",
    ],
    ids=["strings", "or", "and", "fstrings", "sum"],
)
def test_long_chains_that_python_accepts_are_linted(project, source):
    (project / "c.py").write_text("n_layer = 12\n" + source + SHAPE)
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 1, result
    assert result.stdout.startswith("c.py:5:1: GPT101 ")
    assert result.stderr == ""


def test_a_chain_too_deep_for_libcst_is_one_clear_error(project):
    (project / "c.py").write_text("n_layer = 12\nx = " + " or ".join(["a"] * 10_000) + "\n")
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 2
    assert re.fullmatch(
        r"c\.py:2:1: GPT000 expression nested 10000 levels deep .* \(3000\)\n",
        result.stdout.splitlines(keepends=True)[0],
    )


def test_a_string_concatenation_too_long_for_libcst_is_read_in_pieces(project):
    (project / "c.py").write_text("n_layer = 12\nx = " + " ".join(["'a'"] * 5000) + "\n" + SHAPE)
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 1, result
    assert result.stdout.startswith("c.py:5:1: GPT101 ")
    assert result.stderr == ""


def test_a_string_concatenation_too_long_for_libcst_without_spaces_is_named_as_gptlints_limit(
    project,
):
    (project / "c.py").write_text("n_layer = 12\nx = " + "".join(["'a'"] * 5000) + "\n")
    result = gptlint_process("c.py", cwd=project)
    assert result.returncode == 2
    assert result.stdout.splitlines()[0] == (
        "c.py:2:1: GPT000 implicit string concatenation of 5,000 parts: valid Python, but more"
        " than gptlint's parser (libcst) can read (3,000), and no space or tab between its parts"
        " at least every 2,000 parts lets gptlint read it in pieces; this file is not linted"
        " (join the parts with a list and ''.join, or split the string)"
    )


@pytest.mark.slow
def test_a_file_of_50000_lines_is_linted(project):
    """How fast: benchmarks/big_file.py (goal: under 60 s)."""
    lines = [f"eval_iters = {n}  # line {n + 1}" for n in range(49_998)]
    (project / "big.py").write_text("\n".join([*lines, "n_head = 12", "n_embd = 512"]) + "\n")
    result = gptlint_process("big.py", cwd=project, timeout=300)  # a hang fails
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("big.py:50000:1: GPT101 n_embd=512")


def test_many_gptconfig_calls_and_statements_finish(project, capsys):
    calls = "".join(f"c{i} = GPTConfig(n_layer=12, n_head=8, n_embd=512)\n" for i in range(2000))
    (project / "c.py").write_text(calls + "; ".join(f"x{i} = {i}" for i in range(2000)) + "\n")
    code, _, err = gptlint(capsys, "--select", "GPT1", "c.py")
    assert (code, err) == (0, "")


# 3. Values too large to evaluate: bounded, and named where a rule needs them


@pytest.mark.parametrize(
    "value",
    [
        "10**10**10",
        "2\n" + "max_iters = max_iters * max_iters\n" * 40,
        "len(str([0]*10**8))",
        'len(f"{[0]*10**8}")',
        "round(10**30, -10**8)",
        "-10**5000",
        "1 << 10**9",
        "9**9**9",
    ],
)
def test_evaluation_is_bounded(project, capsys, value):
    (project / "c.py").write_text(f"max_iters = {value}\n" + SHAPE)
    code, out, err = gptlint(capsys, "--select", "ALL", "c.py")
    assert code == 1 and err == ""
    assert "GPT101" in out


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("10**10**10", 3),
        ("2\n" + "n_embd = n_embd * n_embd\n" * 40, 43),
        ("10**4000", 3),
        ("2\nn_embd **= 10**6", 4),
    ],
)
def test_a_value_too_large_to_evaluate_is_named_where_it_is_needed(project, capsys, value, line):
    (project / "c.py").write_text(f"n_layer = 12\nn_head = 8\nn_embd = {value}\nbatch_size = 8\n")
    code, out, err = gptlint(capsys, "--select", "ALL", "c.py")
    assert (code, err) == (1, "")
    assert (
        f"GPT503 GPT501 not checked: n_embd is not known without running the config: c.py:{line}"
        " (too large to evaluate statically)"
    ) in out


def test_too_large_follows_the_names_that_read_it(project):
    from gptlint.nanogpt.resolve import load_config

    (project / "c.py").write_text(
        "x = 10**10**10\nn_embd = x // 2\nout_dir = str([0]*10**8)\nn_layer = 2**20000\n"
        "n_layer = 4\nn_head = len(x)\nblock_size = 2**9999 * 2**9999\n"
    )
    config = load_config("c.py")
    assert config.origin("n_embd") == "c.py:2 (too large to evaluate statically)"
    assert config.origin("out_dir") == "c.py:3 (too large to evaluate statically)"
    assert config.origin("n_layer") == "c.py:5"  # assigned again: known
    assert config.origin("n_head") == "c.py:6 (too large to evaluate statically)"
    assert config.origin("block_size") == "c.py:7 (too large to evaluate statically)"


SHARED = (  # 10**10 elements (v, w: 10**15) to print, compare or hash; 100,001 in memory each
    "x = [0] * 100000\ny = [x] * 100000\nz = [[0] * 100000] * 100000\n"
    "t = (0,) * 100000\nu = (t,) * 100000\nv = [y] * 100000\nw = [z] * 100000\n"
)


@pytest.mark.parametrize(
    "value", ["str(y)", "f'{y}'", "'%s' % (y,)", "v == w", "{u: 1}", "v in [w]"]
)
def test_printing_comparing_or_hashing_a_shared_list_is_bounded(project, value):
    (project / "c.py").write_text(SHARED + f"out_dir = {value}\n" + SHAPE)
    result = gptlint_process("--select", "ALL", "c.py", cwd=project, timeout=60)
    assert (result.returncode, result.stderr) == (1, "")
    assert "GPT101" in result.stdout


def test_a_shared_list_too_large_to_print_or_compare_is_named(project):
    from gptlint.nanogpt.resolve import load_config

    (project / "c.py").write_text(SHARED + "out_dir = str(y)\neval_only = y == z\n")
    config = load_config("c.py")
    assert config.origin("out_dir") == "c.py:8 (too large to evaluate statically)"
    assert config.origin("eval_only") == "c.py:9 (too large to evaluate statically)"


@pytest.mark.parametrize("n_layer", ["10**8", "10**9", "10**14"])
def test_a_huge_layer_count_is_estimated_without_a_list_per_layer(project, n_layer):
    (project / "c.py").write_text(f"n_layer = {n_layer}\nn_head = 8\nn_embd = 512\n")
    result = gptlint_process("--select", "GPT501", "c.py", cwd=project, timeout=60)
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.startswith("c.py:3:1: GPT501 estimated peak training memory ")
    assert "GiB exceeds the 11.99 GiB budget of rtx4070" in result.stdout


def test_parameter_sizes_are_counted_not_listed_per_layer():
    from gptlint.runmodel.trainingrun import ModelShape

    shape = ModelShape(10**9, 8, 512, 1024, 50304, True)
    numels = shape.parameter_numels()
    assert len(numels) <= 10
    assert sum(n * k for n, k in numels.items()) == shape.num_params(non_embedding=False)


def test_implausibly_large_sizes_are_impossible_values(project, capsys):
    (project / "c.py").write_text("n_layer = 12\nn_head = 8\nn_embd = 2**63\n")
    code, out, _ = gptlint(capsys, "--select", "GPT106", "c.py")
    assert code == 1
    assert out.splitlines()[0] == (
        "c.py:3:1: GPT106 n_embd=9223372036854775808 is implausibly large (10**15 or more):"
        " every Linear and embedding layer is n_embd wide, and nothing that size can be built"
        " or run"
    )


@pytest.mark.parametrize(
    ("launch", "flags"),
    [
        ("torchrun --nproc_per_node=0 train.py", "--nproc_per_node=0"),
        ("torchrun --nproc_per_node=8 --nnodes=0 train.py", "--nproc_per_node=8 --nnodes=0"),
    ],
)
def test_a_launch_line_that_starts_no_process_is_reported(project, capsys, launch, flags):
    (project / "c.py").write_text(f"# {launch}\ngradient_accumulation_steps = 40\n")
    code, out, _ = main_output(capsys, "--select", "GPT401", "c.py")
    assert code == 1
    assert out.splitlines()[0] == (
        f"c.py:1:1: GPT401 the world size is 0 (`{flags}` in the file's comments): torchrun"
        " starts no process; --nproc_per_node and --nnodes must be at least 1"
    )


# 4. Any value a config can hold: no rule crashes or hangs, and fixes converge


KEYS = sorted({*NANOGPT_DEFAULTS, "vocab_size", *KV_HEAD_KEYS, "n_embed", "lr"})


VALUES = st.one_of(
    st.integers(-3, 5000).map(str),
    st.sampled_from(
        ["0", "-1", "10 ** 30", "10 ** 400", "2 ** 62", "1e308", "float('inf')", "float('nan')",
         "0.0", "1.0", "5e3", "True", "False", "'bf16'", "'gpt2-xl'", "'resume'", "'Scratch'", "''",
         "'float16'", "None", "[1, 2]", "os.environ['X']"]
    ),
)  # fmt: skip


LINES = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=8)


EVERY_RULE = Settings(select=("ALL",))


def _source(lines, comment):
    text = "import os\n" + "".join(f"{k} = {v}  # {comment}\n" for k, v in lines)
    return decode_source("config/c.py", text.encode())


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    LINES,
    st.sampled_from(["", "~125M parameters", "1.5B", "torchrun --nproc_per_node=3", "(124M)"]),
)
def test_every_rule_survives_any_value_and_fixes_converge(hang_guard, lines, comment):
    source = _source(lines, comment)
    with hang_guard(60):
        result = lint_source(source, EVERY_RULE)
        assert {d.code for d in result.diagnostics} <= {rule.code for rule in ALL_RULES}
        outcome = fix_source(source, EVERY_RULE, unsafe=True)
        again = fix_source(decode_source("config/c.py", outcome.fixed), EVERY_RULE, unsafe=True)
    assert again.fixed == outcome.fixed


EXTREMES = [
    "10 ** 30", "10 ** 400", "2 ** 62", "-(10 ** 30)", "1e308", "-1e308", "float('inf')",
    "-float('inf')", "float('nan')", "-0.5",
]  # fmt: skip


@pytest.mark.parametrize("value", EXTREMES)
def test_extreme_values_of_every_key_neither_crash_nor_hang(hang_guard, value):
    """How fast: benchmarks/big_file.py (goal: under 2 s for each key)."""
    for key in KEYS:
        source = decode_source("config/c.py", f"{key} = {value}\nn_head = 7\n".encode())
        with hang_guard(60):
            lint_source(source, EVERY_RULE)
            fix_source(source, EVERY_RULE, unsafe=True)


# 5. Paths and folders that name no config


def test_missing_path_is_named_and_the_others_are_still_linted(project, capsys):
    (project / "b.py").write_text(SHAPE)
    code, out, err = gptlint(capsys, "nope.py", "b.py")
    assert code == 2
    assert err == "gptlint: error: nope.py: no such file or directory\n"
    assert out.startswith("b.py:3:1: GPT101")


def test_missing_path_alone_prints_one_line(project, capsys):
    assert gptlint(capsys, "nope.py") == (
        2,
        "",
        "gptlint: error: nope.py: no such file or directory\n",
    )


def test_empty_and_too_long_paths_are_errors(project, capsys):
    (project / "a.py").write_text(SHAPE)
    assert gptlint(capsys, "") == (
        2,
        "",
        "gptlint: error: '': an empty path names no file or folder\n",
    )
    long = "x" * 5000
    code, _, err = gptlint(capsys, long)
    assert (code, err) == (2, f"gptlint: error: {long}: File name too long\n")
    code, _, err = gptlint(capsys, "/".join(["y" * 200] * 40))
    assert code == 2 and err.count("\n") == 1 and "internal error" not in err


def test_folder_with_no_configs(project, capsys):
    (project / "src").mkdir()
    (project / "src" / "model.py").write_text("class GPT:\n    pass\n")
    (project / "src" / "README.md").write_text("n_head = 12\n")
    assert gptlint(capsys, "src") == (2, "", "gptlint: error: src: no config files found\n")


def test_a_folder_all_excluded_names_the_exclude_setting(project, capsys):
    (project / "config").mkdir()
    (project / "config" / "a.py").write_text(SHAPE)
    (project / "pyproject.toml").write_text("[tool.gptlint]\nexclude = ['*']\n")
    code, out, err = gptlint(capsys, "config")
    assert (code, out) == (2, "")
    assert err == (
        "gptlint: error: config: no config files found (every .py file here matches the"
        " exclude setting: ['*'])\n"
    )


def test_code_found_in_a_folder_is_not_run_through_the_rules(project, capsys, monkeypatch):
    def check(self, ctx):
        raise AssertionError(f"a rule ran on {ctx.file.path}")

    monkeypatch.setattr(EmbdNotDivisibleByHeads, "check", check)
    (project / "model.py").write_text("n_embd = 500\nclass GPT:\n    pass\n")
    (project / "sample.py").write_text("n_embd = 500\nexec(open('configurator.py').read())\n")
    assert gptlint(capsys, ".") == (2, "", "gptlint: error: .: no config files found\n")


def test_odd_file_names_keep_every_format_one_line_per_finding(tmp_path, capsys):
    import json as json_module

    from gptlint.command.cli import main as run_cli

    names = [b"bad\xffname.py", b"new\nline.py"]
    for name in names:
        with open(os.path.join(os.fsencode(tmp_path), name), "w") as file:
            file.write("n_embd = 500\n")
    assert run_cli([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    findings = [line for line in out.splitlines() if "GPT101" in line]
    assert len(findings) == 2
    assert any("bad\\xffname.py:1:1: GPT101" in line for line in findings)
    assert any("new\\nline.py:1:1: GPT101" in line for line in findings)
    assert run_cli([str(tmp_path), "--output-format", "sarif"]) == 1
    sarif = json_module.loads(capsys.readouterr().out)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
    }
    assert {uri.rsplit("/", 1)[1] for uri in uris} == {"bad%FFname.py", "new%0Aline.py"}


# 6. Settings and options: one line naming the file and line, or the option


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool.gptlint]\nselect = [GPT101\n", "pyproject.toml:2: invalid TOML"),
        (
            "[tool.gptlint]\nselec = ['GPT101']\n",
            "pyproject.toml:2: unknown key 'selec' in [tool.gptlint]",
        ),
        (
            "[project]\nname = 'x'\n[tool.gptlint]\ngpu = 'rtx9999'\n",
            "pyproject.toml:4: gpu: unknown GPU profile 'rtx9999'",
        ),
        (
            "[tool.gptlint]\n\nworld-size = 0\n",
            "pyproject.toml:3: world-size: must be a positive integer",
        ),
        ("[tool.gptlint]\nignore = 5\n", "pyproject.toml:2: ignore: must be a list of strings"),
        ("[tool.gptlint]\ndefaults = 'no/train.py'\n", "pyproject.toml:2: defaults: no such file"),
        ("[tool]\ngptlint = 3\n", "pyproject.toml:2: [tool.gptlint] must be a table"),
    ],
    ids=["toml", "key", "gpu", "world-size", "type", "defaults", "table"],
)
def test_broken_settings_are_one_line_naming_file_and_line(project, capsys, pyproject, message):
    (project / "pyproject.toml").write_text(pyproject)
    (project / "c.py").write_text(SHAPE)
    code, out, err = gptlint(capsys, "c.py")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith(f"gptlint: error: {project / message.split(':')[0]}:")
    assert message.split(":", 1)[1] in err


def test_broken_settings_of_one_named_folder_do_not_stop_the_others(tmp_path, capsys):
    from gptlint.command.cli import main as run_cli

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.py").write_text("n_embd = 500\n")
    (tmp_path / "b" / "pyproject.toml").write_text('[tool.gptlint]\ngpu = "nope"\n')
    assert run_cli([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    out, err = capsys.readouterr()
    assert "a.py:1:1: GPT101" in out
    assert "b/pyproject.toml:2: gpu: unknown GPU profile 'nope'" in err


def test_broken_command_line_setting(project, capsys):
    (project / "c.py").write_text(SHAPE)
    code, out, err = gptlint(capsys, "--memory-budget", "lots", "c.py")
    assert (code, out) == (2, "")
    assert err.startswith("gptlint: error: --memory-budget: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("1e999GB", "memory size '1e999GB' is too large (over 1 PiB)"),
        ("1e999999999GB", "memory size '1e999999999GB' is too large (over 1 PiB)"),
        ("9" * 400, "memory size '" + "9" * 37 + "...' is too large (over 1 PiB)"),
        ("0.1b", "memory size '0.1b' is less than one byte"),
        ("1e-300GB", "memory size '1e-300GB' is less than one byte"),
        ("nan", "cannot read memory size 'nan' (write e.g. 12GB, 10500MiB)"),
    ],
)
def test_memory_budget_out_of_range_is_a_clear_error(project, capsys, budget, message):
    (project / "a.py").write_text(SHAPE)
    assert gptlint(capsys, "--memory-budget", budget, "a.py") == (
        2,
        "",
        f"gptlint: error: --memory-budget: {message}\n",
    )
    (project / "pyproject.toml").write_text(f'[tool.gptlint]\nmemory-budget = "{budget}"\n')
    code, out, err = gptlint(capsys, "a.py")
    assert (code, out) == (2, "")
    assert err == f"gptlint: error: {project / 'pyproject.toml'}:2: memory-budget: {message}\n"


@given(
    st.text(max_size=30)
    | st.from_regex(r"[-+]?[0-9._eE]{0,14}[ ]?(|b|k|kb|mib|mb|g|gb|gib)", fullmatch=True)
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_memory_returns_a_usable_size_or_raises_value_error(text):
    try:
        size = parse_memory(text)
    except ValueError as exc:
        assert "\n" not in str(exc).replace(repr(text), "")
        return
    assert 1 <= size <= 1024**5


# 7. Data files gptlint reads (meta.pkl): bounded before anything is built


def _big_int_pickle(value: int) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x80\x02}X\n\x00\x00\x00vocab_size\x8b" + struct.pack("<i", len(data)) + data + b"s."


def _laughs() -> bytes:
    """A 'billion laughs' pickle: ten levels of lists, each holding the one below ten times."""
    data = b"\x80\x02(X\x01\x00\x00\x00aq\x00" + b"h\x00" * 9 + b"lq\x01"
    for level in range(2, 12):
        data += b"(" + (b"h" + bytes([level - 1])) * 10 + b"lq" + bytes([level])
    return data + b"}q\x20X\n\x00\x00\x00vocab_sizeh\x0bs."


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_laughs(), "vocab_size must be a positive int, got a list"),
        (
            b"\x80\x04\x8e" + struct.pack("<Q", 10**12) + b"abc.",
            "not read: expected 1000000000000 bytes in a bytes8, but only 4 remain",
        ),
        (
            b"\x80\x04\x8d" + struct.pack("<Q", 16 * 2**30) + b"abc.",
            "not read: expected 17179869184 bytes in a unicodestring8, but only 4 remain",
        ),
        (
            b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b"x.",
            "not read: expected 1099511627776 bytes in a bytearray8, but only 2 remain",
        ),
        (b"\x80\x02K\x05(K\x01e.", "not read: 'int' object has no attribute 'append'"),
        (b"\x80\x04\x8f(K\x01\x90}b.", "not read: 'set' object has no attribute '__dict__'"),
        (
            b"\x80\x02}X\n\x00\x00\x00vocab_size" + b"]" * 200_000 + b"KA" + b"a" * 200_000 + b"s.",
            "not read: nested more than 1,000 levels deep",
        ),
        (
            _big_int_pickle(-(10**5000)),
            "vocab_size must be a positive int, got a negative 16610-bit number (about -10^5000)",
        ),
        (
            _big_int_pickle(2**63),
            "vocab_size 9223372036854775808 is too large to be usable (over 10,000,000)",
        ),
        (
            _big_int_pickle(10**5000),
            "vocab_size a 16610-bit number (about 10^5000) is too large to be usable"
            " (over 10,000,000)",
        ),
        (
            b"\x80\x02" + b"N0" * 3_000_000 + b"N.",
            "not read: no vocab_size in the first 1,000,000 pickle opcodes of its 6,000,004 bytes",
        ),
        (
            b"\x80\x04}(\x8c\nvocab_size\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R"
            + b"N0" * 3_000_000
            + b"u.",
            "not read: refused STACK_GLOBAL: only plain data is accepted (a pickle can run code)",
        ),
    ],
    ids=[
        "laughs",
        "bytes8",
        "unicode8",
        "bytearray8",
        "appends-int",
        "build-set",
        "deep",
        "negative",
        "2**63",
        "10**5000",
        "large",
        "large-global",
    ],
)
def test_hostile_meta_pkl_is_a_clean_error(tmp_path, data, reason):
    path = tmp_path / "meta.pkl"
    path.write_bytes(data)
    with pytest.raises(MetaError) as caught:
        read_meta_vocab(path)
    assert caught.value.reason == reason


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_large_valid_meta_pkl_gives_its_vocab_size(project, protocol):
    """A meta.pkl of tokenizer tables larger than MAX_META_BYTES is followed as a stream up to
    its vocab_size (pickle.dump writes it first), never unpickled whole."""
    chars = [chr(0x4E00 + i) for i in range(20_000)]
    meta = {"vocab_size": 20_000, "itos": dict(enumerate(c * 300 for c in chars))}
    meta["stoi"] = {c: i for i, c in enumerate(chars)}
    (project / "data" / "big").mkdir(parents=True)
    (project / "data" / "big" / "meta.pkl").write_bytes(pickle.dumps(meta, protocol=protocol))
    assert (project / "data" / "big" / "meta.pkl").stat().st_size > 4_000_000
    (project / "c.py").write_text("dataset = 'big'\nbatch_size = 4096\n")
    result = gptlint_process("--select", "GPT501", "c.py", cwd=project, timeout=60)
    assert result.stderr == ""
    assert "with vocab_size 20000 (from data/big/meta.pkl)" in result.stdout


# 8. A bug in gptlint: named with the file, the other files still linted


def test_a_crash_on_one_file_is_named_and_the_others_are_still_linted(project, capsys, monkeypatch):
    original = EmbdNotDivisibleByHeads.check

    def check(self, ctx):
        if ctx.file.path.endswith("boom.py"):
            raise ValueError("a bug")
        return original(self, ctx)

    monkeypatch.setattr(EmbdNotDivisibleByHeads, "check", check)
    (project / "boom.py").write_text(SHAPE)
    (project / "ok.py").write_text(SHAPE)
    code, out, err = gptlint(capsys, "boom.py", "ok.py")
    assert code == 2
    assert err == (
        "gptlint: error: boom.py: internal error: ValueError: a bug"
        " (please report it; GPTLINT_DEBUG=1 shows the traceback)\n"
    )
    assert out.startswith("ok.py:3:1: GPT101")
