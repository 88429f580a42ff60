"""Attention-shape rules over every place a shape is written."""

from __future__ import annotations

from gptlint.lint.fix import fix_source
from gptlint.lint.linter import lint_file
from gptlint.settings.table import Settings
from gptlint.text.decode import read_source


def _lint(tmp_path, text, code, **settings):
    path = tmp_path / "c.py"
    path.write_text(text)
    return lint_file(path, Settings(select=(code,), **settings))


def test_head_dim_is_checked_in_presets_and_gptconfig_calls(tmp_path):
    text = (
        "SIZES = {\n    'tiny': dict(n_layer=2, n_head=6, n_embd=252),\n"
        "    'ok': dict(n_layer=2, n_head=4, n_embd=256),\n}\n"
        "model = GPTConfig(n_layer=4, n_head=5, n_embd=300, block_size=128)\n"
    )
    found = _lint(tmp_path, text, "GPT102")
    assert [d.line for d in found] == [2, 5]
    assert "head_dim = 252/6 = 42" in found[0].message
    assert "head_dim = 300/5 = 60" in found[1].message


def test_math_cost_uses_the_configs_batch_and_dropout(tmp_path):
    text = (
        "n_layer = 4\nn_head = 4\nn_embd = 100\nbatch_size = 2\nblock_size = 512\ndropout = 0.1\n"
    )
    (found,) = _lint(tmp_path, text, "GPT102", gpu="t4")
    # 2 x 4 x 512 x 512 scores, 9 bytes each with dropout (probabilities, mask, dropped copy)
    assert "0.02 GiB per layer, 0.07 GiB for 4 layers at batch_size 2 x block_size 512" in (
        found.message
    )


def test_head_dim_rules_skip_shapes_gpt101_reports(tmp_path):
    assert _lint(tmp_path, "n_head = 12\nn_embd = 500\n", "GPT102") == []


def test_kv_head_fix_keeps_the_rest_of_the_line(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("n_head = 16\nn_kv_head = 3  # GQA\n")
    outcome = fix_source(read_source(str(path)), Settings(select=("GPT104",)))
    assert outcome.fixed == b"n_head = 16\nn_kv_head = 4  # GQA\n"


def test_vocab_in_a_fork_schema_is_checked(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "train.py").write_text(
        "vocab_size = 32000\nn_head = 12\nn_embd = 768\nexec(open('configurator.py').read())\n"
    )
    path = tmp_path / "config" / "c.py"
    path.parent.mkdir()
    path.write_text("vocab_size = 32001\n")
    (found,) = lint_file(path, Settings(select=("GPT105",)))
    assert "use 32064" in found.message


def test_gptconfig_calls_take_a_forks_dataclass_defaults(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "train.py").write_text("n_head = 12\nexec(open('configurator.py').read())\n")
    (tmp_path / "model.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass GPTConfig:\n"
        "    n_head: int = 12\n    n_kv_head: int = 5\n    n_embd: int = 768\n"
    )
    path = tmp_path / "config" / "c.py"
    path.parent.mkdir()
    path.write_text("cfg = GPTConfig(n_layer=4)\n")
    (found,) = lint_file(path, Settings(select=("GPT104",)))
    assert "n_head=12 is not divisible by n_kv_head=5" in found.message
    assert found.fix is not None
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text("")
    plain = other / "plain.py"
    plain.write_text("cfg = GPTConfig(n_layer=4)\n")
    assert lint_file(plain, Settings(select=("GPT104",))) == []
    assert lint_file(plain, Settings(select=("GPT104",), model=tmp_path / "model.py"))
