"""A fork's own training scripts, end to end through the CLI: every global the script that
runs a config assigns or reads is a key, and a config is checked against the script it is for."""

from __future__ import annotations

import ast
import dataclasses
import pickle
from pathlib import Path

import pytest

from gptlint.command.cli import main
from gptlint.lint.context import LintContext
from gptlint.nanogpt.forkmodel import (
    NANOGPT_OPTIMIZER_CALL,
    gpt_imports,
    model_module,
    optimizer_call,
)
from gptlint.nanogpt.resolve import load_config
from gptlint.runmodel.trainingrun import DEVICE_TYPE, OptimizerArgs
from gptlint.settings.table import Settings

# Written for these tests after the shape of forks that keep several training scripts: defaults
# of None, defaults inside `if True:`, names read only after the configurator ran.
TRAIN_PY = """\
import os
out_dir = 'out'
init_from = 'scratch'
dataset = 'addition'
batch_size = 12
block_size = 256
gradient_accumulation_steps = 1
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.0
bias = False
learning_rate = 1e-3
resume_iter = False
resume_dir = None
val_data_path = 'val.bin'
eval_text_data_path = None
min_lr = None
if True:
    eval_every = 100
    operators = ['+', '-']
if __name__ == '__main__':
    warmup_iters = 100
compile = False
dtype = 'bfloat16'
exec(open('configurator.py').read())
if min_lr == None:
    min_lr = learning_rate / 10
if resume_dir:
    print(resume_dir)
lr = 0.0
while True:
    lr = learning_rate if warmup_iters else min_lr
    print(lr, eval_every, operators, eval_text_data_path, val_data_path, extra_tag)
    break
"""

VARIANT_PY = TRAIN_PY.replace(
    "resume_dir = None\n", "resume_dir = None\neval_addition_527 = True\n"
)


def _project(root: Path) -> Path:
    (root / "pyproject.toml").write_text("[project]\nname = 'fork'\n")
    (root / "train.py").write_text(TRAIN_PY)
    (root / "configurator.py").write_text("# nanoGPT's configurator\n")
    (root / "config").mkdir()
    return root / "config"


def _lint(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_keys_with_none_defaults_in_if_true_blocks_and_read_later_are_known(
    tmp_path, monkeypatch, capsys
):
    config = _project(tmp_path) / "finetune.py"
    config.write_text(
        "resume_dir = 'out/ckpt.pt'\neval_text_data_path = 'data/val_text.bin'\n"
        "min_lr = 1e-4\neval_every = 50\noperators = ['+']\nwarmup_iters = 10\n"
        "extra_tag = 'run1'\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out = _lint(capsys, "--select", "ALL", "--ignore", "GPT5", "config/finetune.py")
    assert (code, out) == (0, "All checks passed!\n")


def test_a_name_the_script_overwrites_before_reading_is_still_unknown(
    tmp_path, monkeypatch, capsys
):
    config = _project(tmp_path) / "c.py"
    config.write_text("lr = 3e-4\nresume_dirs = 'x'\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT2", "config/c.py")
    assert "c.py:1:1: GPT201 lr is not a" in out and "did you mean learning_rate?" in out
    _, out = _lint(capsys, "--select", "GPT2", "--unsafe-fixes", "--diff", "config/c.py")
    assert "+learning_rate = 3e-4" in out
    assert "+resume_dir = 'x'" in out  # one edit: a typo


def test_rename_fix_only_for_a_certain_target(tmp_path, monkeypatch, capsys):
    config = _project(tmp_path) / "c.py"
    config.write_text("resume_dirs = 'a'\nresume_iters = True\n")
    (tmp_path / "train.py").write_text(TRAIN_PY.replace("resume_dir = None\n", ""))
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT201", "config/c.py")
    assert "resume_dirs is not a" in out and "did you mean resume_iter?" in out
    _, out = _lint(capsys, "--select", "GPT201", "--unsafe-fixes", "--diff", "config/c.py")
    assert "+resume_iter = True" in out  # one edit from resume_iter
    assert "+resume_iter = 'a'" not in out  # resume_dirs -> resume_iter: three edits


def test_a_config_is_checked_against_the_script_that_knows_its_keys(tmp_path, monkeypatch, capsys):
    folder = _project(tmp_path)
    (tmp_path / "train_no527.py").write_text(VARIANT_PY)
    (folder / "no527.py").write_text("eval_addition_527 = False\nbatch_size = 8\n")
    (folder / "plain.py").write_text("eval_addition_527 = False\nbatch_size = 8\n# train.py\n")
    monkeypatch.chdir(tmp_path)
    code, out = _lint(capsys, "--select", "GPT2", "config/no527.py")
    assert (code, out) == (0, "All checks passed!\n")
    code, out = _lint(capsys, "--select", "GPT2", "config/plain.py")
    assert f"eval_addition_527 is not a {tmp_path / 'train.py'} config key" in out  # named


def test_a_comment_naming_the_script_chooses_it(tmp_path, monkeypatch, capsys):
    folder = _project(tmp_path)
    (tmp_path / "train_no527.py").write_text(VARIANT_PY)
    (folder / "c.py").write_text("# python train_no527.py config/c.py\neval_addition_527 = 1\n")
    (folder / "d.py").write_text("eval_addition_527 = 1\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT2", "config/c.py", "config/d.py")
    assert f"(defaults: {tmp_path / 'train_no527.py'})" in out  # d.py: by its keys
    assert "config/c.py:2:1: GPT203" in out and "config/d.py:1:1: GPT203" in out


def test_the_defaults_setting_names_the_script_per_folder(tmp_path, monkeypatch, capsys):
    folder = _project(tmp_path)
    (tmp_path / "train_no527.py").write_text(VARIANT_PY)
    variant = folder / "no527"
    variant.mkdir()
    (variant / "pyproject.toml").write_text("[tool.gptlint]\ndefaults = '../../train_no527.py'\n")
    (variant / "c.py").write_text("eval_addition_527 = 1\n# python train.py\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT2", "config/")
    assert f"(defaults: {tmp_path / 'train_no527.py'})" in out


LIGHTNING_TRAIN_PY = """\
import pytorch_lightning as pl
from dataclasses import dataclass


@dataclass
class TrainConfig:
    batch_size: int = 32
    n_embed: int = 384


def main():
    pl.Trainer().fit(TrainConfig())


if __name__ == '__main__':
    main()
"""


def test_a_project_whose_train_py_runs_no_configurator_is_said_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'lightning'\n")
    (tmp_path / "train.py").write_text(LIGHTNING_TRAIN_PY)
    (tmp_path / "config").mkdir()
    for name in ("a.py", "b.py"):
        (tmp_path / "config" / name).write_text("n_embed = 576\nn_head = 5\nuse_sdr = True\n")
    monkeypatch.chdir(tmp_path)
    code = main(["--select", "ALL", "config/"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert f"{tmp_path / 'train.py'} does not run configurator.py" in err
    assert "not nanoGPT-style" in err
    (tmp_path / "nanogpt_train.py").write_text(TRAIN_PY.replace("n_embd", "n_embed"))
    code = main(["--select", "GPT2", "--defaults", "nanogpt_train.py", "config/a.py"])
    assert "use_sdr" in capsys.readouterr().out  # a named nanoGPT-style script is used


def _fork_with(tmp_path: Path, train_py: str = TRAIN_PY, model_py: str | None = None) -> Path:
    folder = _project(tmp_path)
    (tmp_path / "train.py").write_text(train_py)
    if model_py is not None:
        (tmp_path / "model.py").write_text(model_py)
    (folder / "c.py").write_text("batch_size = 8\ninit_from = 'scratch'\n")
    return folder / "c.py"


def _lint_fork(
    tmp_path: Path, monkeypatch, capsys, config: str, train_py: str = TRAIN_PY, **model: str
) -> str:
    """gptlint's output for a fork's `config/c.py` holding `config`, run from the fork."""
    _fork_with(tmp_path, train_py, model.get("model_py")).write_text(config)
    monkeypatch.chdir(tmp_path)
    return _lint(capsys, "config/c.py")[1]


FLASH_OFF_MODEL = """\
class CausalSelfAttention:
    def __init__(self, config):
        self.flash = False  # manual attention
"""

TANH_GELU_MODEL = """\
import math
import torch


def new_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def unused_gelu(x):
    return torch.tanh(x)


class MLP:
    def forward(self, x):
        return new_gelu(x)
"""


def test_a_model_py_that_turns_flash_off_is_estimated_as_manual_attention(
    tmp_path, monkeypatch, capsys
):
    _fork_with(tmp_path, model_py=FLASH_OFF_MODEL)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT5", "--memory-budget", "100MB", "config/c.py")
    assert "GPT503" not in out
    assert "GPT501 estimated" in out and "manual attention (computed in the model)" in out


def test_a_model_py_that_uses_a_tanh_gelu_is_not_estimated(tmp_path, monkeypatch, capsys):
    _fork_with(tmp_path, model_py=TANH_GELU_MODEL)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "config/c.py")
    assert f"{tmp_path / 'model.py'}:5 uses a tanh GELU" in out
    (tmp_path / "model.py").write_text(TANH_GELU_MODEL.replace("return new_gelu(x)", "return x"))
    _, out = _lint(capsys, "config/c.py")
    assert "GPT503" not in out  # defined, never called


def test_a_train_py_that_builds_another_class_says_so(tmp_path, monkeypatch, capsys):
    train = TRAIN_PY + "model = Mamba(d_model=n_embd)\nmodel = torch.compile(model)\n"
    _fork_with(tmp_path, train_py=train)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "config/c.py")
    assert "GPT501 estimated" not in out
    line = len(TRAIN_PY.splitlines()) + 1
    assert f"{tmp_path / 'train.py'}:{line} builds its model with `Mamba(...)`" in out


@pytest.mark.parametrize(
    "imports",
    [
        "from models.gpt import GPTConfig, GPT\n",
        "import models.gpt as net\nbuilt = net.GPT(net.GPTConfig())\n",
    ],
)
def test_the_model_is_read_from_the_module_train_py_imports_its_gpt_from(
    tmp_path, monkeypatch, capsys, imports
):
    train = imports + TRAIN_PY
    _fork_with(tmp_path, train_py=train, model_py="# not the model train.py builds\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "gpt.py").write_text(TANH_GELU_MODEL)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "config/c.py")
    assert f"{tmp_path / 'models' / 'gpt.py'}:5 uses a tanh GELU" in out


def test_a_train_py_whose_model_module_is_not_in_the_project_is_not_estimated(
    tmp_path, monkeypatch, capsys
):
    train = TRAIN_PY.replace("import os\n", "import os\nfrom model import GPTConfig, GPT\n")
    _fork_with(tmp_path, train_py=train)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--memory-budget", "100MB", "config/c.py")
    assert "GPT501 estimated" not in out
    assert (
        f"GPT503 GPT501 not checked: {tmp_path / 'train.py'}:2 imports GPT from `model`, but"
        " there is no model.py beside it: the model it builds cannot be read"
    ) in out
    (tmp_path / "model.py").write_text("class GPT:\n    pass\n")
    _, out = _lint(capsys, "--memory-budget", "100MB", "config/c.py")
    assert "GPT503" not in out and "GPT501 estimated" in out


def test_the_model_setting_reads_its_file_where_train_pys_import_is_not_in_the_project(
    tmp_path, monkeypatch, capsys
):
    """The `model` setting names the model to read: a GPT import train.py cannot resolve no
    longer stops the estimate, and the named file's differences are said."""
    train = TRAIN_PY.replace("import os\n", "import os\nfrom model import GPTConfig, GPT\n")
    _fork_with(tmp_path, train_py=train)
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "gpt.py").write_text(TANH_GELU_MODEL)
    (tmp_path / "pyproject.toml").write_text("[tool.gptlint]\nmodel = 'nets/gpt.py'\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--memory-budget", "100MB", "config/c.py")
    assert "imports GPT from `model`" not in out
    assert f"{tmp_path / 'nets' / 'gpt.py'}:5 uses a tanh GELU" in out


@pytest.mark.parametrize(
    ("imports", "files", "found"),
    [
        ("from model import GPTConfig, GPT", ["model.py"], "model.py"),
        ("from models.gpt import GPT", ["models/gpt.py"], "models/gpt.py"),
        ("from gpt import GPT", ["gpt/__init__.py", "gpt.py"], "gpt/__init__.py"),
        ("from gpt import GPT", ["gpt/other.py", "gpt.py"], "gpt.py"),
        ("from gpt.model import GPT", ["gpt.py", "gpt/model.py"], None),
        ("from model import GPT as Net", ["model.py"], "no import"),
        ("from model import GPTConfig", ["model.py"], "no import"),
        (
            "try:\n    from model import GPT\nexcept ImportError:\n    from lib.model import GPT",
            ["lib/model.py"],
            "lib/model.py",
        ),
        ("from model import GPT", [], None),
        (f"from {'m' * 300} import GPT", [], None),  # a name too long for the file system
        ("import model\nmodel = model.GPT(conf)", ["model.py"], "model.py"),
        ("import models.gpt\nm = models.gpt.GPT(conf)", ["models/gpt.py"], "models/gpt.py"),
        ("import models.gpt as g\nm = g.GPT(conf)", ["model.py", "models/gpt.py"], "models/gpt.py"),
        ("from models import gpt\nm = gpt.GPT(conf)", ["models/gpt.py"], "models/gpt.py"),
        ("import nets as n\nm = n.GPT(conf)", [], None),
        ("import model\nm = model.Mamba(conf)", ["model.py"], "no import"),
        ("import model as m, other\nx = other.GPT(conf)", ["other.py"], "other.py"),
    ],
)
def test_the_module_of_train_pys_gpt_is_found_as_python_imports_it(tmp_path, imports, files, found):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    module = model_module(tmp_path / "train.py", gpt_imports(ast.parse(imports)))
    if found == "no import":
        assert module is None
    else:
        assert module is not None
        assert module.path == (None if found is None else tmp_path / found)


@pytest.mark.parametrize(
    ("script", "opens", "configurator", "read"),
    [
        ("src/train.py", "src/configurator.py", "src/configurator.py", True),  # named from above
        ("scripts/train.py", "configurator.py", "configurator.py", True),  # the root's
        ("experiments/train.py", "configurator.py", "experiments/configurator.py", False),
    ],
)
def test_a_training_script_in_a_folder_that_runs_from_the_projects_root_is_read(
    tmp_path, monkeypatch, capsys, script, opens, configurator, read
):
    """A fork that keeps its trainer in a folder and runs it from the root
    (`python src/train.py config/c.py`: the configurator it opens is named from there) is
    read for the root's configs; a script run from its own folder is not theirs."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fork'\n")
    for name, text in {
        script: TRAIN_PY.replace("'configurator.py'", repr(opens)),
        configurator: "# nanoGPT's configurator\n",
        "config/c.py": "resume_dirs = 'x'\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT2", "config/c.py")
    if read:
        assert f"resume_dirs is not a {tmp_path / script} config key" in out
        assert "did you mean resume_dir?" in out
    else:
        assert str(tmp_path / script) not in out


@pytest.mark.parametrize("named", ["y" * 5000 + "/configurator.py", "a\\x00b/configurator.py"])
def test_a_configurator_path_the_file_system_cannot_look_at_is_passed_over(
    tmp_path, monkeypatch, capsys, named
):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fork'\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(TRAIN_PY.replace("'configurator.py'", repr(named)))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "c.py").write_text("resume_dirs = 'x'\n")
    monkeypatch.chdir(tmp_path)
    code, out = _lint(capsys, "--select", "GPT2", "config/c.py")
    assert code == 1 and "GPT204 resume_dirs is not a nanoGPT config key" in out
    assert "src/train.py" not in out


@pytest.mark.parametrize(
    ("files", "found"),
    [
        (["models/gpt.py"], "models/gpt.py"),  # `python -m src.train` imports from the root
        (["models/gpt.py", "src/models/gpt.py"], "src/models/gpt.py"),  # the script's own first
        ([], None),
    ],
)
def test_the_model_of_a_script_run_from_the_root_is_found_from_its_folder_then_the_root(
    tmp_path, files, found
):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("exec(open('src/configurator.py').read())\n")
    (tmp_path / "src" / "configurator.py").write_text("")
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    imports = gpt_imports(ast.parse("from models.gpt import GPT"))
    module = model_module(tmp_path / "src" / "train.py", imports)
    assert module is not None
    assert module.path == (None if found is None else tmp_path / found)


# A training program kept among a fork's configs (a fork that grew its own trainer): it imports
# the project's code and runs it; never exec'd by train.py's configurator.
PROGRAM_PY = """\
from loop import train
batchsize = 8
batch_size = 8
if batch_size:
    train(batch_size)
"""


def test_a_program_that_runs_its_projects_code_is_not_taken_for_a_config(
    tmp_path, monkeypatch, capsys
):
    folder = _project(tmp_path)
    (tmp_path / "loop.py").write_text("def train(batch_size):\n    pass\n")
    (tmp_path / "model.py").write_text("class GPTConfig:\n    pass\n")
    (folder / "prog.py").write_text(PROGRAM_PY)
    # configs still: one importing the project's code without running it, one printing
    (folder / "imports.py").write_text("from model import GPTConfig\nbatchsize = 8\n")
    (folder / "prints.py").write_text("import os\nbatchsize = 8\nbatch_size = 8\nprint(os.sep)\n")
    monkeypatch.chdir(tmp_path)
    code, out = _lint(capsys, "--select", "GPT201", "config")
    assert code == 1
    assert "prog.py" not in out
    assert "config/imports.py:2:1: GPT201" in out and "config/prints.py:2:1: GPT201" in out
    assert "config/prog.py:2:1: GPT201" in _lint(capsys, "--select", "GPT201", "config/prog.py")[1]


def test_an_init_from_branch_of_the_fork_is_not_called_undefined(tmp_path, monkeypatch, capsys):
    train = TRAIN_PY + (
        "if init_from == 'finetune':\n    model = GPT(GPTConfig())\n"
        "elif init_from.startswith('lora'):\n    model = GPT(GPTConfig())\n"
    )
    config = _fork_with(tmp_path, train_py=train)
    monkeypatch.chdir(tmp_path)
    for value in ("finetune", "lora_r8"):
        config.write_text(f"init_from = '{value}'\n")
        _, out = _lint(capsys, "config/c.py")
        assert "never defines `model`" not in out
        assert f"init_from='{value}' (config/c.py:1) takes a branch of" in out
    config.write_text("init_from = 'finetun'\nbatch_size = 8\n")
    assert "takes a branch" not in _lint(capsys, "config/c.py")[1]


OLD_NANOGPT_TRAIN_PY = TRAIN_PY.replace(
    "if min_lr == None:",
    "ddp = int(os.environ.get('RANK', -1)) != -1\n"
    "if ddp:\n    gradient_accumulation_steps //= ddp_world_size\n"
    "else:\n    gradient_accumulation_steps *= 8\n"
    "batch_size = batch_size\nif min_lr == None:",
)


def test_what_train_py_does_to_keys_after_the_configurator_is_followed(
    tmp_path, monkeypatch, capsys
):
    config = _fork_with(tmp_path, train_py=OLD_NANOGPT_TRAIN_PY)
    config.write_text("batch_size = 256\ngradient_accumulation_steps = 4\nn_embd = 768\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT501", "config/c.py")
    assert "GPT501" in out and "fix:" not in out  # the config's value is not what runs
    run = LintContext(load_config(config), Settings()).training_run.value
    assert run.spec.gradient_accumulation_steps == 4 * 8  # one process: train.py's `*= 8`
    assert run.tokens_per_iter == 32 * 256 * 256
    line = OLD_NANOGPT_TRAIN_PY.splitlines().index("    gradient_accumulation_steps *= 8") + 1
    where = f"gradient_accumulation_steps=32 (override by {tmp_path / 'train.py'}:{line}"
    assert where in run.notes[-1]
    on_8 = LintContext(load_config(config), Settings(world_size=8)).training_run.value
    assert on_8.spec.gradient_accumulation_steps == 1  # the `if ddp:` branch splits it instead


def test_between_scripts_that_know_the_same_keys_the_config_is_named_after_one(
    tmp_path, monkeypatch, capsys
):
    folder = _project(tmp_path)
    (tmp_path / "train.py").unlink()
    for name in ("train_alpha.py", "train_llama.py"):
        (tmp_path / name).write_text(VARIANT_PY)
    (folder / "train_llama_130m.py").write_text("eval_addition_527 = 1\n")
    (folder / "llama").mkdir()
    (folder / "llama" / "small.py").write_text("eval_addition_527 = 1\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT203", "config/")
    assert out.count(f"(defaults: {tmp_path / 'train_llama.py'})") == 2


def test_an_optimizer_that_is_not_adamw_is_said(tmp_path, monkeypatch, capsys):
    train = TRAIN_PY.replace("compile = False\n", "compile = False\nalgorithm = 'adamw'\n") + (
        "if algorithm == 'adam_mini':\n    optimizer = Adam_mini(model.parameters())\n"
        "else:\n    optimizer = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), 'cuda')\n"
    )
    config = _fork_with(tmp_path, train_py=train)
    config.write_text("batch_size = 64\nn_embd = 768\nblock_size = 1024\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "config/c.py")
    assert "GPT501 estimated" in out and "AdamW state" in out
    config.write_text("batch_size = 64\nn_embd = 768\nblock_size = 1024\nalgorithm = 'adam_mini'\n")
    _, out = _lint(capsys, "config/c.py")
    line = train.splitlines().index("    optimizer = Adam_mini(model.parameters())") + 1
    assert "AdamW state" not in out
    assert f"train.py:{line} builds its optimizer with `Adam_mini(...)`, not nanoGPT's AdamW" in out


def test_the_memory_finding_names_the_variant_script_it_read(tmp_path, monkeypatch, capsys):
    folder = _project(tmp_path)
    (tmp_path / "train_no527.py").write_text(VARIANT_PY)
    (folder / "c.py").write_text("eval_addition_527 = False\nbatch_size = 512\nn_embd = 768\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT501", "config/c.py")
    assert f"eager (the run {tmp_path / 'train_no527.py'} starts);" in out


def test_the_sequence_length_is_what_train_py_feeds_the_model(tmp_path, monkeypatch):
    train = TRAIN_PY.replace("compile = False\n", "compile = False\nseq_len = 64\n") + (
        "def get_batch(data):\n    return [data[i:i+seq_len] for i in range(batch_size)]\n"
    )
    config = _fork_with(tmp_path, train_py=train)
    monkeypatch.chdir(tmp_path)
    config.write_text("seq_len = 128\nblock_size = 1024\n")
    run = LintContext(load_config(config), Settings()).training_run.value
    assert (run.spec.block_size, run.spec.shape.block_size) == (128, 1024)
    assert any(f"the sequence length is seq_len=128 ({config}:1)" in note for note in run.notes)
    config.write_text("seq_len = 2048\nblock_size = 1024\n")
    problems = LintContext(load_config(config), Settings()).training_run.problems
    assert f"seq_len=2048 ({config}:1) is longer than the model's block_size 1024" in str(
        problems[0]
    )


PRETRAINED_TRAIN_PY = """\
init_from = 'scratch'
n_layer = 12
n_head = 12
n_embd = 768
dropout = 0.0
bias = False
attn_type = 'flash'
exec(open('configurator.py').read())
if init_from.startswith('gpt2'):
    override_args = dict(dropout=dropout, attn_type=attn_type, bias=bias)
    model = GPT.from_pretrained(init_from, override_args)
"""


def test_gpt301_names_what_the_forks_train_py_passes_to_from_pretrained(project, capsys):
    """A fork's train.py that passes more than dropout to `from_pretrained`: a key it passes is
    not called ignored, and the message names what it passes, with its line, not nanoGPT's
    "only dropout"."""
    (project / "train.py").write_text(PRETRAINED_TRAIN_PY)
    (project / "ft.py").write_text("init_from = 'gpt2'\nn_layer = 6\nbias = True\n")
    code = main(["--select", "GPT301", "ft.py"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0] == (
        "ft.py:2:1: GPT301 init_from='gpt2' loads the checkpoint's shape (12/12/768, bias True):"
        " n_layer set here is ignored (train.py:11 passes on only dropout, attn_type, bias)"
    )


def test_gpt301_says_when_what_is_passed_cannot_be_read(project, capsys):
    (project / "train.py").write_text(
        PRETRAINED_TRAIN_PY.replace("dict(dropout=dropout, attn_type=attn_type, bias=bias)", "f()")
    )
    (project / "ft.py").write_text("init_from = 'gpt2'\nn_layer = 6\n")
    main(["--select", "GPT301", "ft.py"])
    assert "n_layer set here is ignored (what train.py passes to from_pretrained could not be" in (
        capsys.readouterr().out
    )


def test_the_optimizer_is_called_with_what_train_py_passes_it(tmp_path, monkeypatch):
    call = "optimizer = model.configure_optimizers(weight_decay, {lr}, (0.9, beta2), device_type"
    train = TRAIN_PY + call + ", muon=use_muon)\n"
    train = train.replace("compile = False\n", "compile = False\nuse_muon = False\nbeta2 = 0.99\n")
    config = _fork_with(tmp_path, train_py=train.format(lr="learning_rate"))
    config.write_text("batch_size = 8\nuse_muon = True\n")
    monkeypatch.chdir(tmp_path)
    spec = LintContext(load_config(config), Settings()).training_run.value.spec
    # the config's values over train.py's defaults; the check's own device for device_type
    assert spec.optimizer_args == OptimizerArgs(
        (0.1, 1e-3, (0.9, 0.99), DEVICE_TYPE), (("muon", True),)
    )
    (tmp_path / "train.py").write_text(train.format(lr="args.lr"))
    spec = LintContext(load_config(config), Settings()).training_run.value.spec
    line = len(train.splitlines())
    assert spec.optimizer_args == OptimizerArgs(
        unreadable=f"{tmp_path / 'train.py'}:{line} passes `args.lr` to the model's"
        " configure_optimizers, whose value for this config cannot be read statically: the"
        " check cannot call it as train.py does"
    )


def test_nanogpts_optimizer_call_is_read_as_nanogpts(tmp_path, monkeypatch):
    train = TRAIN_PY + "optimizer = model.configure_optimizers(weight_decay, learning_rate,"
    train += " (beta1, beta2), device_type)\n"
    tree = ast.parse(train)
    assert optimizer_call(tree) == dataclasses.replace(
        NANOGPT_OPTIMIZER_CALL, line=len(train.splitlines())
    )


MODEL_CHOICES = """\
if model_name == 'gpt2':
    model = GPT(gptconf)
elif model_name == 'hf':
    model = AutoModelForCausalLM.from_pretrained(init_from)
else:
    model = model = TransformerWrapper(num_tokens=50304)
if use_deepspeed:
    model, optimizer, _, _ = deepspeed.initialize(model=model)
model = model.to('cuda')
if compile:
    model = torch.compile(model)
"""


@pytest.mark.parametrize(
    ("settings", "built", "said"),
    [
        ("model_name = 'gpt2'\n", None, None),
        ("model_name = 'hf'\n", "AutoModelForCausalLM.from_pretrained", "builds its model with"),
        ("", "TransformerWrapper", "builds its model with"),
        # GPT(...) built first, then handed to DeepSpeed: wrapped, not another model
        (
            "model_name = 'gpt2'\nuse_deepspeed = True\n",
            "deepspeed.initialize",
            "wraps its model in",
        ),
        (
            "import os\nmodel_name = 'gpt2'\nuse_deepspeed = os.environ.get('DS') == '1'\n",
            "deepspeed.initialize",
            "may wrap (behind an `if` static reading cannot evaluate) its model in",
        ),
    ],
)
def test_the_model_a_config_builds_is_read_through_train_pys_ifs(
    tmp_path, monkeypatch, capsys, settings, built, said
):
    train = TRAIN_PY.replace("compile = False\n", "compile = False\nmodel_name = 'x'\n")
    train = train.replace("compile = False\n", "compile = False\nuse_deepspeed = False\n")
    config = _fork_with(tmp_path, train_py=train + MODEL_CHOICES)
    config.write_text("batch_size = 8\n" + settings)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT5", "config/c.py")
    if built is None:  # nanoGPT's GPT (compiled, moved): estimated as nanoGPT's
        assert "GPT503" not in out
        return
    call = next(line for line in MODEL_CHOICES.splitlines() if built in line)
    line = len(train.splitlines()) + MODEL_CHOICES.splitlines().index(call) + 1
    where = f"GPT503 GPT501 not checked: {tmp_path / 'train.py'}:{line}"
    what = "not nanoGPT's GPT" if said.startswith("builds") else "whose memory gptlint does not"
    assert f"{where} {said} `{built}(...)`, {what}" in out


def test_a_model_built_in_a_function_counts_for_every_config(tmp_path, monkeypatch, capsys):
    train = TRAIN_PY + "def build():\n    model = Mamba(config)\n    return model\n"
    _fork_with(tmp_path, train_py=train)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT5", "config/c.py")
    assert "builds its model with `Mamba(...)`, not nanoGPT's GPT" in out


@pytest.mark.parametrize(
    ("wrap", "shown"),
    [
        ("model = FSDP(model, use_orig_params=True)", "FSDP"),
        ("model, opt = accelerator.prepare(model, opt)", "accelerator.prepare"),
        ("model, opt, _, _ = deepspeed.initialize(model=model, config=ds)", "deepspeed.initialize"),
    ],
)
def test_a_model_handed_to_another_engine_is_said_to_be_wrapped_not_built(
    tmp_path, monkeypatch, capsys, wrap, shown
):
    """nanoGPT's GPT, built first, then kept by an engine whose memory is its own: not
    estimated as nanoGPT's, and not said to be another model."""
    train = TRAIN_PY + f"def build():\n    model = GPT(conf)\n    {wrap}\n    return model\n"
    _fork_with(tmp_path, train_py=train)
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT5", "config/c.py")
    line = len(train.splitlines()) - 1
    assert (
        f"GPT503 GPT501 not checked: {tmp_path / 'train.py'}:{line} wraps its model in"
        f" `{shown}(...)`, whose memory gptlint does not model (nanoGPT's train.py trains the"
        " model itself, or in DDP)"
    ) in out
    assert "not nanoGPT's GPT" not in out


def test_keys_train_py_never_reads_change_nothing(tmp_path, monkeypatch, capsys):
    # this fork keeps nanoGPT's eval_only and init_from but no line reads them (its `if
    # eval_only: break` commented out): a config that sets them trains a model from scratch
    train = TRAIN_PY.replace("compile = False\n", "compile = False\neval_only = False\n")
    train += "# if iter_num == 0 and eval_only: break\n"
    config = _fork_with(tmp_path, train_py=train)
    config.write_text("eval_only = True\ninit_from = 'gpt2-xl'\nn_layer = 2\n")
    monkeypatch.chdir(tmp_path)
    run = LintContext(load_config(config), Settings()).training_run.value
    assert not run.spec.eval_only
    assert (run.model.init_from, run.spec.shape.n_layer) == ("scratch", 2)
    never = f"is never read by {tmp_path / 'train.py'}"
    assert f"eval_only=True ({config}:1) {never}: the run trains" in run.notes
    assert f"init_from='gpt2-xl' ({config}:2) {never}: the model is built from scratch" in run.notes
    (tmp_path / "train.py").write_text(train + "if eval_only and init_from:\n    pass\n")
    run = LintContext(load_config(config), Settings()).training_run.value
    assert run.spec.eval_only and run.spec.shape.n_layer == 48  # read: gpt2-xl, evaluated


@pytest.mark.parametrize(
    ("given", "vocab"),
    [
        ("model_args['vocab_size'] = 32000\n", 32000),  # whatever the data
        ("model_args['vocab_size'] = meta_vocab_size if meta_vocab_size else 50304\n", 65),
    ],
)
def test_a_vocab_train_py_gives_whatever_the_data_is_the_models(
    tmp_path, monkeypatch, given, vocab
):
    train = TRAIN_PY + "model_args = dict(n_layer=n_layer, vocab_size=None)\n" + given
    config = _fork_with(tmp_path, train_py=train)
    (tmp_path / "data" / "addition").mkdir(parents=True)
    with open(tmp_path / "data" / "addition" / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": 65, "itos": {}, "stoi": {}}, f)
    monkeypatch.chdir(tmp_path)
    run = LintContext(load_config(config), Settings()).training_run.value
    assert run.spec.shape.vocab_size == vocab
    if vocab == 32000:
        line = len(train.splitlines())
        assert run.model.vocab_from == f"{tmp_path / 'train.py'}:{line}, whatever the dataset"


GQA_MODEL = """\
from dataclasses import dataclass


@dataclass
class GPTConfig:
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int = 4
    n_embd: int = 768
"""


def test_a_kv_head_count_train_py_does_not_pass_is_the_models_default(
    tmp_path, monkeypatch, capsys
):
    config = _fork_with(tmp_path, model_py=GQA_MODEL)  # TRAIN_PY passes no n_kv_head
    config.write_text("n_head = 6\nn_kv_head = 3\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--select", "GPT104,GPT205", "config/c.py")
    assert (
        "c.py:1:1: GPT104 n_head=6 is not divisible by n_kv_head=4, the model's GPTConfig default"
        " (train.py does not pass n_kv_head): each key/value head must serve the same number of"
        " query heads, so building the model fails; use an n_head divisible by 4 (4 or 8)"
    ) in out
    assert "n_kv_head=3" not in out  # the config's value has no effect: not checked, not fixed
    assert (
        "c.py:2:1: GPT205 n_kv_head is a model setting that"
        f" {tmp_path / 'train.py'} never reads from a config: its model is built with its"
        " GPTConfig's default, n_kv_head=4"
    ) in out
    config.write_text("n_head = 8\n")
    _, out = _lint(capsys, "--select", "GPT104", "config/c.py")
    assert "GPT104" not in out


def test_a_preset_gets_only_the_model_arguments_train_py_hands_from_pretrained(
    tmp_path, monkeypatch
):
    train = TRAIN_PY.replace("compile = False\n", "compile = False\nmup = False\n") + (
        "model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, mup=mup)\n"
        "if init_from.startswith('gpt2'):\n"
        "    override_args = dict(dropout=dropout)\n"
        "    model = GPT.from_pretrained(init_from, override_args)\n"
    )
    config = _fork_with(tmp_path, train_py=train)
    monkeypatch.chdir(tmp_path)
    config.write_text("init_from = 'gpt2'\nmup = True\n")
    run = LintContext(load_config(config), Settings()).training_run
    assert run.problems == () and run.value.spec.shape.extra == ()  # from_pretrained: no mup
    config.write_text("init_from = 'scratch'\nmup = True\n")
    run = LintContext(load_config(config), Settings()).training_run
    assert [p.key for p in run.problems if p.architecture] == ["mup"]  # GPTConfig gets it


WIDE = "batch_size = 64\nn_embd = 768\nblock_size = 1024\n"


# After the shape of forks that compute the loss outside the model, in a closure their
# optimizer calls; their evaluation runs the model under `@torch.no_grad()`.
OUTSIDE_LOSS = """
@torch.no_grad()
def estimate_loss():
    logits = model(X)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), Y.view(-1))

def closure():
    with ctx:
        logits = model(X)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), Y.view(-1), ignore_index=-1)
    loss.backward()
    return loss
"""


def test_a_training_step_that_computes_the_loss_outside_the_model_is_said(
    tmp_path, monkeypatch, capsys
):
    train = TRAIN_PY + OUTSIDE_LOSS
    out = _lint_fork(tmp_path, monkeypatch, capsys, WIDE, train)
    line = train.splitlines().index("        logits = model(X)") + 1
    assert "GPT501 estimated" not in out
    assert (
        f"GPT503 GPT501 not checked: {tmp_path / 'train.py'}:{line} runs its model as"
        " `model(X)`, without the targets, and computes the loss outside it, not as nanoGPT's"
        " `logits, loss = model(X, Y)`"
    ) in out


def test_an_evaluation_without_targets_beside_a_step_with_them_is_nanogpts(
    tmp_path, monkeypatch, capsys
):
    train = TRAIN_PY + (
        "with torch.no_grad():\n    sample = model(X)\n"
        "for micro_step in range(gradient_accumulation_steps):\n"
        "    with ctx:\n        logits, loss = model(X, Y)\n    loss.backward()\n"
    )
    out = _lint_fork(tmp_path, monkeypatch, capsys, WIDE, train)
    assert "GPT503" not in out and "GPT501 estimated" in out


# After the shape of forks whose model's configure_optimizers builds Muon for the matrices
# behind a flag train.py passes it.
MUON_MODEL_PY = """\
class GPT:
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, use_muon,
                             fused=True):
        if use_muon:
            if not self.matrices:
                raise ValueError("no matrices")
            return [Muon(self.matrices, lr=0.02), torch.optim.AdamW(self.rest, learning_rate)]
        elif fused and device_type == 'cuda':
            return torch.optim.AdamW(self.parameters(), learning_rate, betas, fused=True)
        return torch.optim.Adam(self.parameters(), learning_rate, betas)
"""

MUON_CALL = (
    "optimizers = model.configure_optimizers(weight_decay, learning_rate, (0.9, 0.95),"
    " device_type, {flag})\n"
)


MATCH_MODEL_PY = """\
class GPT:
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, kind):
        match kind:
            case "adam":
                return torch.optim.AdamW(self.parameters(), learning_rate, betas)
            case "sgd" | "sgd-nesterov":
                return torch.optim.SGD(self.parameters(), learning_rate)
            case _:
                return Lion(self.parameters())
"""

EARLY_RETURN_MODEL_PY = """\
class GPT:
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, use_muon):
        if not use_muon:
            return torch.optim.AdamW(self.parameters(), learning_rate, betas)
        return [Muon(self.matrices, lr=0.02), torch.optim.AdamW(self.rest, learning_rate)]
"""

MAY = "may build (behind an `if` static reading cannot evaluate)"


@pytest.mark.parametrize(
    ("model_py", "flag", "config", "said"),
    [
        (MUON_MODEL_PY, "use_muon", "", None),
        (MUON_MODEL_PY, "use_muon", "use_muon = True\n", "7 builds `Muon(...)`"),
        (MUON_MODEL_PY, "use_muon and device_type == 'cuda'", "use_muon = True\n",
         f"7 {MAY} `Muon(...)`"),
        (MUON_MODEL_PY, "True", "", "7 builds `Muon(...)`"),
        # `match kind:` takes the first case that matches: the others are not built
        (MATCH_MODEL_PY, "kind", "", None),
        (MATCH_MODEL_PY, "kind", "kind = 'sgd-nesterov'\n", "7 builds `SGD(...)`"),
        (MATCH_MODEL_PY, "kind", "kind = 'lion'\n", "9 builds `Lion(...)`"),
        (MATCH_MODEL_PY, "self_config.kind", "", f"7 {MAY} `SGD(...)`"),
        # what follows an `if` that returns runs only where its test is false
        (EARLY_RETURN_MODEL_PY, "use_muon", "", None),
        (EARLY_RETURN_MODEL_PY, "use_muon", "use_muon = True\n", "5 builds `Muon(...)`"),
    ],
)  # fmt: skip
def test_an_optimizer_the_models_configure_optimizers_builds_for_the_config_is_said(
    tmp_path, monkeypatch, capsys, model_py, flag, config, said
):
    keys = "compile = False\nuse_muon = False\nkind = 'adam'\n"
    train = TRAIN_PY.replace("compile = False\n", keys)
    train += "weight_decay = 0.1\n" + MUON_CALL.format(flag=flag)
    out = _lint_fork(tmp_path, monkeypatch, capsys, WIDE + config, train, model_py=model_py)
    if said is None:
        assert "GPT501 estimated" in out and "AdamW state" in out
        return
    assert "GPT501 estimated" not in out
    assert (
        f"GPT503 GPT501 not checked: {tmp_path / 'model.py'}:{said} in the model's"
        " configure_optimizers, not nanoGPT's AdamW, whose state the estimate counts; pytest"
        " --gpt-configs measures it with the fork's own model.py"
    ) in out


@pytest.mark.parametrize(("test", "said"), [("== 'cuda'", "builds"), ("== 'cpu'", None)])
def test_an_optimizer_the_model_builds_on_its_device_type_is_read_for_a_gpu(
    tmp_path, monkeypatch, capsys, test, said
):
    # train.py passes its device_type; the run a memory check is about is on a GPU: 'cuda'
    model_py = (
        "class GPT:\n"
        "    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):\n"
        f"        if device_type {test}:\n"
        "            return Lion(self.parameters(), lr=learning_rate)\n"
        "        return torch.optim.AdamW(self.parameters(), learning_rate, betas)\n"
    )
    call = "model.configure_optimizers(weight_decay, learning_rate, (0.9, 0.95), device_type)"
    train = TRAIN_PY + f"weight_decay = 0.1\noptimizer = {call}\n"
    out = _lint_fork(tmp_path, monkeypatch, capsys, WIDE, train, model_py=model_py)
    if said is None:
        assert "GPT501 estimated" in out and "AdamW state" in out
        return
    assert "GPT501 estimated" not in out
    assert f"GPT503 GPT501 not checked: {tmp_path / 'model.py'}:4 {said} `Lion(...)`" in out


# After the shape of forks whose model.py unties the output head, or builds grouped-query
# attention from a GPTConfig default train.py does not pass.
HEAD_MODEL_PY = """\
from dataclasses import dataclass

@dataclass
class GPTConfig:
    n_head: int = 12
    n_kv_head: int = 4

class GPT:
    def __init__(self, config):
        self.transformer = dict(wte=Embedding(config.vocab_size, config.n_embd))
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
{tie}
"""


@pytest.mark.parametrize(
    ("tie", "n_head", "said"),
    [
        ("        self.transformer.wte.weight = self.lm_head.weight", 4, None),
        ("        self.lm_head.weight = self.transformer.wte.weight", 4, None),
        ("        # self.transformer.wte.weight = self.lm_head.weight", 4, "untied"),
        ("        self.transformer.wte.weight = self.lm_head.weight", 12, "grouped"),
    ],
)
def test_a_model_py_that_unties_the_head_or_groups_the_kv_heads_is_not_estimated(
    tmp_path, monkeypatch, capsys, tie, n_head, said
):
    config = f"batch_size = 8\nn_head = {n_head}\nn_embd = 768\n"
    out = _lint_fork(tmp_path, monkeypatch, capsys, config, model_py=HEAD_MODEL_PY.format(tie=tie))
    model_py = tmp_path / "model.py"
    if said is None:
        assert "GPT501 estimated" in out or "All checks passed!" in out
        assert "GPT503" not in out
    elif said == "untied":
        assert (
            f"GPT503 GPT501 not checked: {model_py}:11 does not tie lm_head's weight to the token"
            " embedding's as nanoGPT does"
        ) in out
    else:
        assert (
            f"GPT503 GPT501 not checked: {model_py}:6 builds the model with n_kv_head=4, its"
            " GPTConfig default (train.py does not pass n_kv_head): grouped-query attention"
        ) in out


@pytest.mark.parametrize("where", ["absolute", "key", "bare", "environment"])
def test_the_vocab_is_read_from_the_folder_train_py_reads_its_data_under(
    tmp_path, monkeypatch, capsys, where
):
    data = tmp_path / "datasets"
    (data / "poems").mkdir(parents=True)
    (data / "poems" / "meta.pkl").write_bytes(pickle.dumps({"vocab_size": 321}))
    folder = {
        "absolute": f"os.path.join({str(data)!r}, dataset)",
        "key": "os.path.join(data_root, dataset)",
        "bare": "dataset",
        "environment": "os.path.join(os.environ['DATA'], dataset)",
    }[where]
    train = TRAIN_PY.replace("compile = False\n", "compile = False\ndata_root = 'nowhere'\n")
    train += f"data_dir = {folder}\n"
    config = _fork_with(tmp_path, train_py=train)
    dataset = "datasets/poems" if where == "bare" else "poems"
    config.write_text(f"dataset = {dataset!r}\ndata_root = 'datasets'\nbatch_size = 64\n")
    monkeypatch.chdir(tmp_path)
    _, out = _lint(capsys, "--memory-budget", "100MB", "config/c.py")
    line = len(train.splitlines())
    if where == "environment":
        assert (
            f"vocab_size 50304 ({tmp_path / 'train.py'}:{line} reads meta.pkl under `data_dir ="
            " os.path.join(os.environ['DATA'], dataset)`, which static reading cannot resolve:"
            " nanoGPT's default)"
        ) in out
    else:  # `data_dir = dataset`: the dataset is the data's folder
        shown = str(data) if where == "absolute" else "datasets"
        assert f"vocab_size 321 (from {shown}/poems/meta.pkl)" in out
