"""Key rules against a fork's own train.py, helper variables and the configurator's rules."""

from __future__ import annotations

from pathlib import Path

from gptlint.lint.linter import lint_file
from gptlint.settings.table import Settings

FORK_TRAIN_PY = """\
import os
import torch
out_dir = 'out'
init_from = 'scratch'
dataset = 'openwebtext'
batch_size = 12
block_size = 1024
gradient_accumulation_steps = 40
dropout = 0.0
bias = False
compile = True
n_layer = 12
n_head = 12
n_embd = 768
n_kv_head = 4
vocab_size = 32000
use_rotary = True
rope_theta = 10000.0
learning_rate = 6e-4
dtype = 'bfloat16' if torch.cuda.is_available() else 'float16'
config_keys = [k for k, v in globals().items() if not k.startswith('_')]
exec(open('configurator.py').read())
extra_after_configurator = 1
"""


def _fork(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fork'\n")
    (tmp_path / "train.py").write_text(FORK_TRAIN_PY)
    (tmp_path / "config").mkdir()
    return tmp_path / "config"


def _codes(path: Path, settings: Settings | None = None, select=("ALL",)) -> list[str]:
    chosen = settings or Settings()
    return [d.code for d in lint_file(path, Settings(**{**chosen.__dict__, "select": select}))]


def test_fork_keys_found_beside_the_config_are_not_reported(tmp_path):
    config = _fork(tmp_path) / "small.py"
    config.write_text("use_rotary = False\nrope_theta = 5e5\nn_kv_head = 2\nvocab_size = 32768\n")
    assert _codes(config) == []


def test_fork_keys_from_the_defaults_setting(tmp_path):
    folder = _fork(tmp_path)
    elsewhere = tmp_path / "elsewhere" / "config"
    elsewhere.mkdir(parents=True)
    (tmp_path / "elsewhere" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    config = elsewhere / "c.py"
    config.write_text("use_rotary = False\nn_kv_head = 2\n")
    assert "GPT205" in _codes(config)  # plain nanoGPT: n_kv_head is ignored
    settings = Settings(defaults=folder.parent / "train.py")
    assert _codes(config, settings) == []


def test_near_miss_of_a_fork_key_says_so(tmp_path):
    config = _fork(tmp_path) / "typo.py"
    config.write_text("use_rotery = False\nlearning_rat = 1e-3\n")
    found = lint_file(config, Settings(select=("GPT201",)))
    messages = [d.message for d in found]
    assert [d.code for d in found] == ["GPT201", "GPT201"]
    assert "did you mean use_rotary?" in messages[0]
    assert "did you mean learning_rate?" in messages[1]
    assert str(tmp_path / "train.py") in messages[0]


def test_key_assigned_after_the_configurator_is_not_a_config_key(tmp_path):
    config = _fork(tmp_path) / "late.py"
    config.write_text("extra_after_configurator = 2\n")
    assert _codes(config, select=("GPT204",)) == ["GPT204"]


def test_helper_variables_read_by_the_config_are_not_reported(tmp_path):
    config = tmp_path / "c.py"
    config.write_text(
        "n_embed = 576\nn_embd = n_embed\ntokens = 2**19\n"
        "gradient_accumulation_steps = tokens // (12 * 1024)\n"
        "_scratch = 1\nPRESETS = {'a': 1}\n"
    )
    assert _codes(config, select=("GPT201", "GPT204")) == []


def test_unknown_key_rule_is_off_by_default(tmp_path):
    config = tmp_path / "c.py"
    config.write_text("use_rotary = True\n")
    assert [d.code for d in lint_file(config, Settings(gpu="a100-80gb"))] == []
    assert _codes(config, select=("GPT204",)) == ["GPT204"]


def test_duplicate_in_an_if_block_and_reassignment_from_itself_are_fine(tmp_path):
    config = tmp_path / "c.py"
    config.write_text(
        "import time\nout_dir = 'out'\nout_dir = f'{out_dir}-{int(time.time())}'\n"
        "batch_size = 8\nif True:\n    batch_size = 4\n"
    )
    assert _codes(config, select=("GPT202",)) == []


def test_type_of_an_override_target_that_a_fork_declares(tmp_path):
    config = _fork(tmp_path) / "t.py"
    config.write_text("rope_theta = 10000\nuse_rotary = 1\n")
    found = lint_file(config, Settings(select=("GPT203",)))
    assert [d.line for d in found] == [1, 2]
    assert "rope_theta = 10000 is an int, but the default (10000.0) is a float" in found[0].message
