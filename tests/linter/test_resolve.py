"""How gptlint reads a config as nanoGPT would run it, through the public API (`load_config`,
`lint_file`): arithmetic, references to earlier keys and to defaults, GPTConfig calls and
presets, a fork's train.py, and values it cannot know, which it never guesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.facts.values import UNKNOWN
from gptlint.lint.linter import lint_file
from gptlint.nanogpt.resolve import ConfigError, OverrideError, load_config
from gptlint.settings.table import Settings

FORK_TRAIN_PY = """\
import os
out_dir = 'out'
batch_size = 8
n_layer = 8
n_head = 8
n_embd = 512
n_kv_head = 2
dtype = 'bfloat16' if os.environ.get('BF16') else 'float16'
config_keys = [k for k, v in globals().items() if not k.startswith('_')]
exec(open('configurator.py').read())
late_key = 1
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return tmp_path


def config(project: Path, text: str, name: str = "c.py"):
    path = project / "config" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return load_config(path)


def codes(project: Path, text: str, select: str = "GPT101") -> list[tuple[int, str]]:
    path = project / "config" / "c.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return [(d.line, d.code) for d in lint_file(path, Settings(select=(select,)))]


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("gradient_accumulation_steps = 5 * 8\n", "gradient_accumulation_steps", 40),
        ("n_embd = 64 * 9\n", "n_embd", 576),
        ("max_iters = 2 ** 10 + 1_000\n", "max_iters", 2024),
        ("learning_rate = 6e-4 / 10\n", "learning_rate", 6e-4 / 10),
        ("block_size = (256 << 2) // 1\n", "block_size", 1024),
        ("batch_size = max(4, 8) if True else 1\n", "batch_size", 8),
        ("out_dir = 'out-' + 'fine' 'web'\n", "out_dir", "out-fineweb"),
        ("dataset = 'owt'\nout_dir = f'out-{dataset}'\n", "out_dir", "out-owt"),
        ("dropout = -(-0.1)\n", "dropout", 0.1),
        ("compile = not True\n", "compile", False),
        ("n_layer = int('6')\n", "n_layer", 6),
    ],
)
def test_arithmetic_and_literals(project, text, key, value):
    assert config(project, text).get(key) == value


def test_references_to_earlier_keys_and_to_defaults(project):
    loaded = config(
        project,
        "max_iters = 5000\n"
        "lr_decay_iters = max_iters\n"
        "min_lr = learning_rate / 10\n"
        "warmup_iters = eval_interval // 2\n"
        "n_embd = n_embd * 2\n"
        "eval_iters += 50\n",
    )
    assert loaded.get("lr_decay_iters") == 5000
    assert loaded.get("min_lr") == pytest.approx(6e-5)
    assert loaded.get("warmup_iters") == 1000
    assert loaded.get("n_embd") == 1536
    assert loaded.get("eval_iters") == 250


def test_later_assignments_win_and_origins_name_the_line(project):
    loaded = config(project, "batch_size = 8\n\nbatch_size = 16  # really\n")
    assert loaded.get("batch_size") == 16
    assert loaded.origin("batch_size") == f"{project / 'config' / 'c.py'}:3"
    assert loaded.origin("n_layer") == "default (nanoGPT train.py)"
    assert loaded.get("n_layer") == 12


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("import os\nn_head = int(os.environ['HEADS'])\n", id="environ"),
        pytest.param("import time\nn_head = int(time.time())\n", id="call"),
        pytest.param("n_head = heads_from_somewhere\n", id="undefined"),
        pytest.param("n_head = len('abcd')\n", id="len"),
        pytest.param("n_head = [h for h in range(4)][0]\n", id="comprehension"),
        pytest.param("if big:\n    n_head = 16\n", id="if"),
        pytest.param("try:\n    n_head = 4\nexcept Exception:\n    pass\n", id="try"),
        pytest.param("from presets import *\n", id="star-import"),
        pytest.param("exec(open('more.py').read())\n", id="exec"),
        pytest.param("from presets import n_head\n", id="import"),
        pytest.param("n_head = f'{8:>3}'\n", id="format-spec"),
        pytest.param("n_head = 10 ** 10 ** 10\n", id="huge"),
        pytest.param("for n_head in (4, 8):\n    pass\n", id="for"),
        pytest.param("x = (n_head := 5)\n", id="walrus"),
        pytest.param("globals()['n_head'] = 5\n", id="globals"),
        pytest.param("globals().update(n_head=5)\n", id="globals-update"),
        pytest.param("for i, (a, n_head) in enumerate([(1, 2)]):\n    pass\n", id="for-tuple"),
        pytest.param("with open('h') as n_head:\n    pass\n", id="with-as"),
        pytest.param("try:\n    pass\nexcept Exception as n_head:\n    pass\n", id="except-as"),
        pytest.param("n_head = 7\ndel n_head\n", id="del"),
    ],
)
def test_values_that_need_running_code_are_unknown_never_guessed(project, text):
    assert config(project, text).get("n_head") is UNKNOWN


def test_unknown_values_silence_rules_instead_of_guessing(project):
    assert codes(project, "import os\nn_head = int(os.environ['H'])\nn_embd = 500\n") == []
    assert codes(project, "if big:\n    n_embd = 500\nn_head = 12\n") == []
    assert codes(project, "n_head = 12\nn_embd = 500\n") == [(2, "GPT101")]


def test_gptconfig_calls_use_their_own_arguments_and_model_defaults(project):
    text = (
        "n_layer = 12\nn_head = 8\nn_embd = 512\n"
        "small = GPTConfig(n_layer=4, n_head=6, n_embd=500)\n"
        "wide = GPTConfig(\n    n_embd=1000,\n)\n"
        "ok = GPTConfig(n_head=8, n_embd=n_embd)\n"
    )
    assert codes(project, text) == [(4, "GPT101"), (6, "GPT101")]


def test_presets_resolve_names_from_earlier_assignments(project):
    text = (
        "width = 500\n"
        "PRESETS = {\n"
        "    'tiny': dict(n_layer=2, n_head=6, n_embd=width),\n"
        "    'small': {'n_layer': 6, 'n_head': 6, 'n_embd': 384},\n"
        "}\n"
    )
    assert codes(project, text) == [(3, "GPT101")]


def test_pretrained_init_ignores_the_shape_keys(project):
    assert codes(project, "init_from = 'gpt2'\nn_head = 12\nn_embd = 500\n") == []
    assert codes(project, "init_from = 'scratch'\nn_head = 12\nn_embd = 500\n") == [(3, "GPT101")]


def test_a_forks_train_py_beside_config_gives_keys_and_defaults(project):
    (project / "train.py").write_text(FORK_TRAIN_PY)
    loaded = config(project, "n_embd = 768\n")
    assert loaded.get("n_head") == 8 and loaded.get("n_layer") == 8
    assert loaded.get("n_kv_head") == 2
    assert loaded.get("batch_size") == 8
    assert "late_key" not in loaded and "config_keys" not in loaded
    assert loaded.origin("n_head") == f"default ({project / 'train.py'})"
    assert loaded.schema.keys["dtype"].type is str  # both branches are strings
    assert codes(project, "n_embd = 500\n") == [(1, "GPT101")]  # 500 % 8 heads, not 12


def test_a_train_py_that_does_not_run_the_configurator_is_not_a_schema(project):
    (project / "train.py").write_text("n_head = 8\n")
    assert config(project, "n_embd = 768\n").get("n_head") == 12


def test_a_train_py_outside_the_project_is_not_used(tmp_path):
    (tmp_path / "train.py").write_text(FORK_TRAIN_PY)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    assert config(project, "n_embd = 768\n").get("n_head") == 12


def test_the_defaults_setting_names_the_train_py(project):
    fork = project / "vendor" / "nanogpt" / "train.py"
    fork.parent.mkdir(parents=True)
    fork.write_text(FORK_TRAIN_PY)
    path = project / "config" / "c.py"
    path.parent.mkdir()
    path.write_text("n_embd = 768\n")
    assert load_config(path, defaults=fork).get("n_head") == 8
    assert load_config(path).get("n_head") == 12


def test_overrides_follow_nanogpts_configurator(project):
    loaded = config(project, "weight_decay = 0\nbatch_size = 8\n")
    assert loaded.with_overrides(["--batch_size=32"]).get("batch_size") == 32
    assert loaded.with_overrides(["dataset=fineweb"]).get("dataset") == "fineweb"
    with pytest.raises(OverrideError, match="type float does not match the config's int"):
        loaded.with_overrides(["--weight_decay=0.1"])
    with pytest.raises(OverrideError, match="unknown config key: n_embed"):
        loaded.with_overrides(["--n_embed=576"])


def test_an_unreadable_config_is_a_config_error_naming_the_line(project):
    with pytest.raises(ConfigError) as raised:
        config(project, "n_layer = 12\nn_head = (8\n")
    assert str(raised.value) == (
        f"{project / 'config' / 'c.py'}:2:10: syntax error: '(' was never closed"
    )
