"""A memory check never silently drops out: machine-only values are answered for the target
GPU, and values only known at run time are named, with the way to supply them (`--set`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gptlint.command.cli import main
from gptlint.facts.gpus import get_profile
from gptlint.lint.rules import RULE_CODES
from gptlint.nanogpt.derive import derive_run
from gptlint.nanogpt.resolve import load_config
from gptlint.settings.pyproject import load_settings

TRAIN_PY = """\
import os
import torch
batch_size = 12
block_size = 1024
gradient_accumulation_steps = 5 * 8
n_layer = 12
n_head = 12
n_embd = 768
dropout = 0.0
bias = False
init_from = 'scratch'
dataset = 'openwebtext'
eval_only = False
compile = True
device = 'cuda'
dtype = 'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else 'float16'
exec(open('configurator.py').read())
ddp = int(os.environ.get('RANK', -1)) != -1
if ddp:
    ddp_world_size = int(os.environ['WORLD_SIZE'])
    assert gradient_accumulation_steps % ddp_world_size == 0
    gradient_accumulation_steps //= ddp_world_size
"""

SEED = """\
# 12 layers, batch 16 x block 1024 "should fit easily"
n_layer = 12
n_head = 12
n_embd = 576
batch_size = 16
block_size = 1024
gradient_accumulation_steps = 32
compile = False
"""


def project(tmp_path: Path, config: str, pyproject: str = "") -> Path:
    """A nanoGPT-like checkout: train.py with the machine-dependent dtype, and config/x.py."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "train.py").write_text(TRAIN_PY)
    if pyproject:
        (tmp_path / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "x.py"
    path.write_text(textwrap.dedent(config))
    return path


def lint(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_dtype_that_depends_on_the_gpu_is_answered_for_the_target(tmp_path, capsys):
    path = project(tmp_path, SEED)
    code, out, _ = lint(capsys, str(path))
    assert code == 1
    assert "GPT501 estimated peak training memory" in out
    assert ", bfloat16, " in out
    code, out, _ = lint(capsys, str(path), "--gpu", "t4")
    assert ", float16, " in out  # the T4 has no bf16: train.py's expression picks float16


@pytest.mark.parametrize(("gpu", "dtype"), [("rtx4070", "bfloat16"), ("t4", "float16")])
def test_the_origin_names_the_line_and_the_gpu(tmp_path, gpu, dtype):
    path = project(tmp_path, SEED, f"[tool.gptlint]\ngpu = '{gpu}'\n")
    settings = load_settings(path.parent, RULE_CODES)
    config = load_config(path, settings.defaults, settings.profile())
    assert config.get("dtype") == dtype
    assert config.origin("dtype") == f"default ({tmp_path / 'train.py'}:16, for {gpu})"


def test_a_value_known_only_at_run_time_is_named_with_the_way_to_supply_it(tmp_path, capsys):
    path = project(tmp_path, "import os\nn_layer = 6\nbatch_size = int(os.environ['BS'])\n")
    code, out, _ = lint(capsys, str(path))
    assert code == 1
    (line,) = [line for line in out.splitlines() if "GPT503" in line]
    assert line.startswith(f"{path}:3:1: GPT503 GPT501 not checked: batch_size is not known")
    assert "supply it with --set batch_size=VALUE" in line
    assert "((" not in line


def test_set_supplies_the_value_as_nanogpts_override_would(tmp_path, capsys):
    path = project(tmp_path, "import os\nn_layer = 6\nbatch_size = int(os.environ['BS'])\n")
    code, out, _ = lint(capsys, str(path), "--set", "batch_size=64")
    assert "GPT503" not in out
    assert "GPT501" in out and "batch_size 64 x block_size 1024" in out
    assert "fix:" not in out  # a value given on the command line is not the file's to rewrite
    code, out, _ = lint(capsys, str(path), "--set", "batch_size=4")
    assert code == 0


def test_set_in_pyproject_and_on_the_command_line(tmp_path, capsys):
    config = "import os\nn_layer = 6\nbatch_size = int(os.environ['BS'])\n"
    path = project(tmp_path, config, "[tool.gptlint]\nset = {batch_size = 64}\n")
    _, out, _ = lint(capsys, str(path))
    assert "batch_size 64 x block_size 1024" in out
    code, out, _ = lint(capsys, str(path), "--set", "batch_size=4")  # the command line wins
    assert code == 0


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("batch_sise=4", "unknown config key: batch_sise"),
        ("batch_size=4.0", "type float does not match"),
        ("batch_size", "is not KEY=VALUE"),
    ],
)
def test_a_set_nanogpt_would_reject_is_a_usage_error(tmp_path, capsys, item, message):
    path = project(tmp_path, SEED)
    code, _, err = lint(capsys, str(path), "--set", item)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


OLD_STYLE_TRAIN_PY = TRAIN_PY.split("ddp = ")[0].replace("5 * 8", "5")  # no split under DDP
LAUNCHED = "# $ torchrun --standalone --nproc_per_node=8 train.py config/x.py\n" + SEED.replace(
    "= 32", "= 5"
)


def test_a_fork_that_keeps_accumulation_per_process_is_not_told_to_divide_it(tmp_path, capsys):
    path = project(tmp_path, LAUNCHED)
    _, out, _ = lint(capsys, str(path), "--select", "GPT401")
    assert "GPT401" in out  # nanoGPT's train.py splits it: 5 is not divisible by 8
    (tmp_path / "train.py").write_text(OLD_STYLE_TRAIN_PY)
    _, out, _ = lint(capsys, str(path), "--select", "GPT401,GPT501")
    assert "GPT401" not in out
    # per process: 16 x 5 sequences become 10 x 8, no multiple of 8 needed; 8 processes
    assert "batch_size=10 with gradient_accumulation_steps=8 keeps 655,360 tokens" in out


@pytest.mark.parametrize(
    ("launch", "flagged"),
    [
        ("# torchrun --nproc_per_node=8 train.py config/x.py", True),
        ("# torchrun --nproc_per_node=8 train.py", True),
        ("# torchrun --nproc_per_node=8 train.py config/other.py", False),
        ("# torchrun --nproc_per_node=0 train.py", True),  # starts no process: reported
        ("# torchrun --nproc_per_node=" + "9" * 5000 + " train.py", False),
    ],
)
def test_the_world_size_comes_from_a_launch_line_that_runs_this_config(
    tmp_path, capsys, launch, flagged
):
    path = project(tmp_path, f"{launch}\ngradient_accumulation_steps = 5\n")
    code, out, err = lint(capsys, str(path), "--select", "GPT401")
    assert ("GPT401" in out) is flagged
    assert code in (0, 1) and err == ""


MOE_TRAIN_PY = (
    TRAIN_PY.replace("exec(open", "n_exp = 1\ntop_k = 2\nexec(open")
    + "model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_exp=n_exp, top_k=top_k)\n"
)


def test_a_forks_own_architecture_is_named_not_estimated_as_nanogpts(tmp_path, capsys):
    path = project(tmp_path, SEED + "n_exp = 8\n")
    (tmp_path / "train.py").write_text(MOE_TRAIN_PY)
    _, out, _ = lint(capsys, str(path))
    (line,) = [line for line in out.splitlines() if "GPT50" in line]
    assert "GPT503 GPT501 not checked: n_exp=8" in line
    assert "passes n_exp to its own GPTConfig" in line
    assert "pytest --gpt-configs measures it with the fork's own model.py" in line
    path.write_text(SEED + "n_exp = 1\n")  # the fork's default: the dense model
    _, out, _ = lint(capsys, str(path))
    assert "GPT501 estimated peak" in out and "GPT503" not in out


def test_keys_train_py_reads_through_globals_are_known(tmp_path, capsys):
    path = project(tmp_path, "data_prefer_queue = False\ndata_cache_files = 4\n")
    train = TRAIN_PY + (
        "queue = Queue(prefer=globals().get('data_prefer_queue', True),\n"
        '              files=globals().get("data_cache_files", 1))\n'
    )
    (tmp_path / "train.py").write_text(train)
    _, out, _ = lint(capsys, str(path), "--select", "ALL")
    assert "GPT204" not in out and "GPT201" not in out
    path.write_text("data_cache_files = 'four'\n")
    _, out, _ = lint(capsys, str(path), "--select", "GPT203")
    assert "GPT203 data_cache_files = 'four' is a str, but the default (1) is an int" in out


def test_a_fork_whose_train_py_lacks_a_key_the_run_needs_is_told_so(tmp_path, capsys):
    path = project(tmp_path, SEED)
    (tmp_path / "train.py").write_text(TRAIN_PY.replace("dataset = 'openwebtext'\n", ""))
    _, out, _ = lint(capsys, str(path))
    assert "GPT503 GPT501 not checked: dataset is not a key of" in out
    assert "gptlint derives runs the way nanoGPT's train.py builds them" in out


def test_a_forks_training_script_named_otherwise_is_found_and_its_compile_read(tmp_path):
    path = project(tmp_path, "n_layer = 6\n")
    (tmp_path / "train.py").unlink()
    script = TRAIN_PY.replace("compile = True\n", "algorithm = 'adam_mini'\n")
    (tmp_path / "train_gpt2.py").write_text(script)
    config = load_config(path)
    assert config.schema.origin == str(tmp_path / "train_gpt2.py")
    assert "algorithm" in config.schema and "compile" not in config.schema
    run = derive_run(config, get_profile("rtx4070")).value
    assert run is not None and run.spec.compile is False  # never compiles
    (tmp_path / "train_gpt2.py").write_text(script + "model = torch.compile(model)\n")
    config = load_config(path)
    run = derive_run(config, get_profile("rtx4070")).value
    assert run is not None and run.spec.compile is True
