"""The run a config gets, derived the way nanoGPT's train.py builds it (no torch needed)."""

from __future__ import annotations

import os
import pickle
import re
import textwrap
from pathlib import Path

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.nanogpt.checkpoint import read_checkpoint_model_args
from gptlint.nanogpt.derive import derive_run, project_root
from gptlint.nanogpt.metadata import read_meta_vocab
from gptlint.nanogpt.resolve import load_config
from gptlint.runmodel.trainingrun import ModelShape, TrainingRun

RTX4070 = get_profile("rtx4070")


def derived(tmp_path: Path, text: str, profile=RTX4070, **kwargs):
    path = tmp_path / "config" / "train_x.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return derive_run(load_config(path), profile, root=tmp_path, strict=True, **kwargs)


def step_for(tmp_path: Path, text: str, **kwargs) -> TrainingRun:
    run = derived(tmp_path, text, **kwargs)
    assert run.value is not None, run.problems
    return run.value


def problem_for(tmp_path: Path, text: str, **kwargs) -> str:
    """The first problem that stops the run, as its message."""
    run = derived(tmp_path, text, **kwargs)
    assert run.value is None, run.value
    return str(run.problems[0])


def write_meta(tmp_path: Path, dataset: str, meta: object) -> Path:
    path = tmp_path / "data" / dataset / "meta.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(meta))
    return path


def test_scratch_takes_the_shape_from_the_config_and_nanogpt_defaults(tmp_path):
    step = step_for(tmp_path, "n_layer = 6\nn_embd = 384\nn_head = 6\nbatch_size = 16\n")
    assert step.spec.shape == ModelShape(6, 6, 384, 1024, 50304, False, 0.0)
    assert (step.spec.batch_size, step.spec.block_size) == (16, 1024)
    assert step.gradient_accumulation_steps == 40
    assert step.tokens_per_iter == 40 * 16 * 1024
    assert (step.spec.dtype, step.spec.compile) == ("bfloat16", True)
    assert step.model.vocab_from == "no data/openwebtext/meta.pkl: nanoGPT's default"


def test_scratch_vocab_comes_from_the_datasets_meta_pkl(tmp_path):
    write_meta(tmp_path, "shakespeare_char", {"vocab_size": 65, "itos": {0: "\n"}})
    step = step_for(tmp_path, "dataset = 'shakespeare_char'\nblock_size = 256\n")
    assert step.spec.shape.vocab_size == 65
    assert step.model.vocab_from == "from data/shakespeare_char/meta.pkl"


def test_nanogpts_char_dataset_gets_the_vocab_its_prepare_script_writes(tmp_path):
    step = step_for(tmp_path, "dataset = 'shakespeare_char'\n")
    assert step.spec.shape.vocab_size == 65
    assert (
        step.model.vocab_from == "data/shakespeare_char/meta.pkl as nanoGPT's prepare.py writes it"
    )


def test_meta_pkl_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    write_meta(tmp_path, "evil", {"vocab_size": Exploit()})
    assert re.search(
        r"refused (posix|nt)\.system: only plain data", problem_for(tmp_path, "dataset = 'evil'\n")
    )
    assert not marker.exists()


def test_meta_pkl_without_vocab_size_falls_back_to_50304(tmp_path):
    meta = write_meta(tmp_path, "words", {"stoi": {"a": 0}})
    assert read_meta_vocab(meta) is None
    assert step_for(tmp_path, "dataset = 'words'\n").spec.shape.vocab_size == 50304


@pytest.mark.parametrize(
    ("preset", "layers", "heads", "width"),
    [
        ("gpt2", 12, 12, 768),
        ("gpt2-medium", 24, 16, 1024),
        ("gpt2-large", 36, 20, 1280),
        ("gpt2-xl", 48, 25, 1600),
    ],
)
def test_gpt2_presets_ignore_the_configs_shape_but_keep_dropout(
    tmp_path, preset, layers, heads, width
):
    step = step_for(
        tmp_path,
        f"init_from = '{preset}'\nn_layer = 2\nn_head = 2\nn_embd = 64\nbias = False\n"
        "dropout = 0.1\n",
    )
    assert step.spec.shape == ModelShape(layers, heads, width, 1024, 50257, True, 0.1)
    assert step.model.model_from == f"{preset} preset"


def test_a_shorter_block_size_crops_the_pretrained_model(tmp_path):
    step = step_for(tmp_path, "init_from = 'gpt2'\nblock_size = 512\n")
    assert (step.spec.shape.block_size, step.spec.block_size) == (512, 512)


def test_a_longer_block_size_than_the_pretrained_model_fails_like_nanogpt(tmp_path):
    assert re.search(
        r"block_size=2048 .* larger than the gpt2 preset .*1024",
        problem_for(tmp_path, "init_from = 'gpt2'\nblock_size = 2048\n"),
    )


def save_checkpoint(path: Path, model_args: dict) -> None:
    torch = pytest.importorskip("torch")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": {"wte.weight": torch.ones(3, 4)},
            "model_args": model_args,
            "iter_num": 7,
            "best_val_loss": torch.tensor(1.5),
            "config": {"batch_size": 8},
        },
        path,
    )


def test_resume_takes_the_checkpoints_model_args_and_the_configs_dropout(tmp_path):
    args = {
        "n_layer": 4,
        "n_head": 4,
        "n_embd": 128,
        "block_size": 256,
        "bias": True,
        "vocab_size": 65,
        "dropout": 0.2,
    }
    save_checkpoint(tmp_path / "out-small" / "ckpt.pt", args)
    step = step_for(tmp_path, "init_from = 'resume'\nout_dir = 'out-small'\nblock_size = 256\n")
    assert step.spec.shape == ModelShape(4, 4, 128, 256, 65, True, 0.0)
    assert step.model.model_from == f"checkpoint {tmp_path / 'out-small' / 'ckpt.pt'}"


def test_checkpoint_model_args_are_read_without_loading_tensors(tmp_path):
    args = {
        "n_layer": 1,
        "n_head": 1,
        "n_embd": 8,
        "block_size": 16,
        "bias": False,
        "vocab_size": 10,
        "dropout": 0.0,
    }
    save_checkpoint(tmp_path / "ckpt.pt", args)
    assert read_checkpoint_model_args(tmp_path / "ckpt.pt") == {
        k: v for k, v in args.items() if k != "dropout"
    }


def test_resume_without_a_checkpoint_says_where_it_looked(tmp_path):
    assert re.search(
        r"reads .*out/ckpt.pt .*which does not exist",
        problem_for(tmp_path, "init_from = 'resume'\n"),
    )


def test_a_value_only_known_at_run_time_names_the_key_its_line_and_the_way_out(tmp_path):
    (problem,) = derived(tmp_path, "import os\nbatch_size = int(os.environ['BS'])\n").problems
    assert "batch_size is not known without running the config" in str(problem)
    assert "train_x.py:2" in str(problem)
    assert (problem.key, problem.unknown) == ("batch_size", True)  # the plugin: --gpt-set


def test_unknown_optimizer_settings_fall_back_to_nanogpts_defaults(tmp_path):
    step = step_for(tmp_path, "import os\nlearning_rate = float(os.environ['LR'])\nbeta2 = 0.99\n")
    assert (step.spec.learning_rate, step.spec.beta2, step.spec.grad_clip) == (6e-4, 0.99, 1.0)


def test_default_dtype_follows_nanogpt_on_a_gpu_without_bf16(tmp_path):
    default = step_for(tmp_path, "", profile=get_profile("t4"))
    assert default.spec.dtype == "float16"
    assert any("no bfloat16" in note for note in default.notes)
    explicit = step_for(tmp_path, "dtype = 'float32'\n", profile=get_profile("t4"))
    assert explicit.spec.dtype == "float32"
    assert explicit.notes == ()


@pytest.mark.parametrize(("mode", "expected"), [("auto", False), ("on", True), ("off", False)])
def test_compile_mode_overrides_the_configs_compile(tmp_path, mode, expected):
    assert (
        step_for(
            tmp_path, "compile = False\n", compile={"auto": None, "on": True, "off": False}[mode]
        ).spec.compile
        is expected
    )


def test_world_size_divides_accumulation_per_process_but_not_tokens_per_iter(tmp_path):
    step = step_for(tmp_path, "batch_size = 12\n", world_size=8)
    assert (step.spec.gradient_accumulation_steps, step.tokens_per_iter) == (5, 40 * 12 * 1024)
    odd = step_for(tmp_path, "", world_size=3)  # 40 / 3: GPT401; memory is still derived
    assert odd.spec.gradient_accumulation_steps == 13
    assert any("not divisible by the world size 3" in note for note in odd.notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("init_from = 'gpt3'\n", "init_from='gpt3' .* is not one nanoGPT accepts"),
        ("dtype = 'fp16'\n", "dtype='fp16' .* is not one of float32, bfloat16, float16"),
        ("batch_size = 0\n", "batch_size=0 .* must be positive"),
        ("batch_size = 8.0\n", "batch_size=8.0 .* must be int"),
        ("n_embd = 512\n", "n_embd=512 is not divisible by n_head=12"),
    ],
)
def test_configs_nanogpt_would_reject_are_explained(tmp_path, text, message):
    assert re.search(message, problem_for(tmp_path, text))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_config_reached_through_links_runs_where_its_real_file_is(tmp_path):
    """train.py runs in the project that holds the config's real file: a linked folder, a
    linked file and `..` after a link all lead there, to its data/<dataset>/meta.pkl."""
    project = tmp_path / "project"
    write_meta(project, "chars", {"vocab_size": 99})
    real = project / "config" / "train_chars.py"
    real.parent.mkdir()
    real.write_text("dataset = 'chars'\nblock_size = 64\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "linked_folder").symlink_to(project / "config", target_is_directory=True)
    (elsewhere / "linked_file.py").symlink_to(real)
    reached = [
        real,
        elsewhere / "linked_folder" / "train_chars.py",
        elsewhere / "linked_file.py",
        elsewhere / "linked_folder" / ".." / "config" / "train_chars.py",
    ]
    for path in reached:
        assert project_root(path, tmp_path) == project.resolve(), path
        run = derive_run(load_config(path), RTX4070, strict=True).value
        assert run is not None, path
        assert (run.spec.shape.vocab_size, run.model.vocab_from) == (
            99,
            "from data/chars/meta.pkl",
        ), path


def test_project_root_is_the_folder_above_config_else_the_working_directory(tmp_path):
    assert project_root(tmp_path / "config" / "x.py", Path("/cwd")) == tmp_path.resolve()
    assert project_root(tmp_path / "configs" / "x.py", Path("/cwd")) == Path("/cwd")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "learning_rate = -1e-3\n",
            "learning_rate=-0.001 .*: AdamW raises 'Invalid learning rate'",
        ),
        ("learning_rate = float('nan')\n", "learning_rate=nan .*Invalid learning rate"),
        ("beta2 = 1.0\n", "beta2=1.0 .*Invalid beta parameter at index 1"),
        ("weight_decay = -0.1\n", "weight_decay=-0.1 .*Invalid weight_decay value"),
    ],
)
def test_optimizer_settings_adamw_rejects_are_problems_not_tracebacks(tmp_path, text, message):
    assert re.search(message, problem_for(tmp_path, text))
