"""Run-setting rules: fixes keep every other byte, near misses only when clear."""

from __future__ import annotations

import pytest

from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_file
from gptlint.lint.rules.pretrained import near_miss
from gptlint.nanogpt.derive import DTYPES as DTYPE_VALUES
from gptlint.nanogpt.derive import INIT_FROM_VALUES
from gptlint.settings.table import Settings
from gptlint.text.decode import read_source


def _fixed(tmp_path, text, code, unsafe=False):
    path = tmp_path / "c.py"
    path.write_bytes(text.encode())
    return fix_source(read_source(str(path)), Settings(select=(code,)), unsafe=unsafe).fixed


@pytest.mark.parametrize(
    ("value", "meant"),
    [
        ("Scratch", "scratch"),
        ("GPT2-XL", "gpt2-xl"),
        ("gpt2 large", "gpt2-large"),
        ("gpt-2", "gpt2"),
        ("resum", "resume"),
        ("gpt2-small", None),
        ("llama-7b", None),
    ],
)
def test_init_from_near_misses(value, meant):
    assert near_miss(value, INIT_FROM_VALUES, {"gpt-2": "gpt2"}) == meant


def test_dtype_aliases():
    from gptlint.lint.rules.pretrained import _DTYPE_ALIASES

    assert near_miss("BF16", DTYPE_VALUES, _DTYPE_ALIASES) == "bfloat16"
    assert near_miss("half", DTYPE_VALUES, _DTYPE_ALIASES) == "float16"
    assert near_miss("int8", DTYPE_VALUES, _DTYPE_ALIASES) is None


def test_safe_fix_keeps_quotes_comments_and_crlf(tmp_path):
    text = "init_from = \"Scratch\"  # start fresh\r\ndtype = 'bf16'\r\n"
    assert _fixed(tmp_path, text, "GPT303") == (
        b"init_from = 'scratch'  # start fresh\r\ndtype = 'bf16'\r\n"
    )
    assert _fixed(tmp_path, text, "GPT304") == (
        b"init_from = \"Scratch\"  # start fresh\r\ndtype = 'bfloat16'\r\n"
    )


def test_ignored_shape_lines_are_deleted_with_their_trailing_comment_only(tmp_path):
    text = (
        "# finetune\ninit_from = 'gpt2'\n\n# shape (ignored)\nn_layer = 6  # small\n"
        "n_embd = 384\nbatch_size = 1\n"
    )
    fixed = _fixed(tmp_path, text, "GPT301", unsafe=True).decode()
    assert fixed == "# finetune\ninit_from = 'gpt2'\n\n# shape (ignored)\nbatch_size = 1\n"


def test_no_removal_fix_when_the_key_is_also_set_in_a_block(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("init_from = 'gpt2'\nn_layer = 6\nif x:\n    n_layer = 4\n")
    (found,) = lint_file(path, Settings(select=("GPT301",)))
    assert found.fix is None


def test_block_size_is_fine_for_scratch_and_resume(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("init_from = 'resume'\nblock_size = 4096\n")
    assert lint_file(path, Settings(select=("GPT302",))) == []


def test_fork_init_from_values_are_not_checked(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "train.py").write_text(
        "init_from = 'scratch'\nexec(open('configurator.py').read())\n"
    )
    path = tmp_path / "config" / "c.py"
    path.parent.mkdir()
    path.write_text("init_from = 'llama2-7b'\n")
    assert lint_file(path, Settings(select=("GPT303",))) == []
