"""The step each nanochat invocation runs per rank, derived from a nanochat-like checkout: the
model base_train builds, COMPUTE_DTYPE on the target GPU, the total batch size (base_train's
scaling-law value when -1), gradient accumulation and its assert, chat_sft's inheritance from
the base run, base_eval; and the problems that stop a run or that only running can answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.nanochat.checkout import Checkout
from gptlint.nanochat.derive import derive_script, derive_step
from gptlint.nanochat.runscript import read_invocations
from gptlint.runmodel.chatrun import ChatStep
from gptlint.runmodel.trainingrun import Derived, Problem

DATA = Path(__file__).resolve().parents[1] / "data" / "nanochat"
H100 = get_profile("h100-80gb")
CHECKOUT = Checkout(DATA)


@pytest.fixture
def fork(tmp_path: Path) -> Checkout:
    shutil.copytree(DATA, tmp_path / "fork")
    return Checkout(tmp_path / "fork")


def steps(text: str, gpu: str = "h100-80gb", world: int | None = None, checkout=CHECKOUT):
    invocations = read_invocations(text)
    return [d for _, d in derive_script(invocations, checkout, get_profile(gpu), world)]


def step(
    text: str, gpu: str = "h100-80gb", world: int | None = None, checkout=CHECKOUT
) -> ChatStep:
    derived = steps(text, gpu, world, checkout)[-1]
    assert derived.value is not None, derived.problems
    return derived.value


def problems(text: str, world: int | None = None, checkout=CHECKOUT) -> tuple[Problem, ...]:
    return steps(text, world=world, checkout=checkout)[-1].problems


def test_speedrun_like_script_on_h100():
    base, evaluation, sft = (d.value for d in steps((DATA / "runs" / "speedrun.sh").read_text()))
    assert base is not None and evaluation is not None and sft is not None
    shape = base.shape
    assert (shape.depth, shape.model_dim, shape.n_head, shape.n_kv_head, shape.head_dim) == (
        24,
        1536,
        12,
        12,
        128,
    )
    assert (shape.vocab_size, shape.seq_len, shape.window_pattern) == (32768, 2048, "SSSL")
    assert (base.device_batch_size, base.world_size, base.total_batch_size) == (16, 8, 1048576)
    assert (base.grad_accum_steps, base.dtype, base.fp8, base.compiled, base.training) == (
        4,
        "bfloat16",
        True,
        True,
        True,
    )
    assert base.notes == (
        "vocab 32768 from tok_train.py's default (its run at line 7 gives none)",
        "auto: h100-80gb is SM 90 (bf16 supported)",
        "world size 8 (torchrun --nproc_per_node=8)",
    )
    assert (evaluation.shape, evaluation.device_batch_size, evaluation.training) == (
        shape,
        16,
        False,
    )
    assert (evaluation.compiled, evaluation.grad_accum_steps, evaluation.total_batch_size) == (
        False,
        1,
        16 * 2048 * 8,
    )
    assert (sft.shape, sft.device_batch_size, sft.total_batch_size, sft.grad_accum_steps) == (
        shape,
        16,
        1048576,
        4,
    )
    assert not sft.fp8
    assert sft.notes[-3:] == (
        "max_seq_len=2048 inherited from the checkpoint of base_train at line 8",
        "device_batch_size=16 inherited from the checkpoint of base_train at line 8",
        "total_batch_size=1048576 inherited from the checkpoint of base_train at line 8",
    )


@pytest.mark.parametrize(
    ("depth", "model_dim", "total", "accum"),
    [
        (12, 768, 524288, 8),
        (20, 1280, 1048576, 16),
        (24, 1536, 1048576, 16),
        (26, 1664, 1048576, 16),
    ],
)
def test_auto_total_batch_size_follows_base_trains_scaling_law(depth, model_dim, total, accum):
    run = step(f"python -m scripts.base_train --depth={depth}\n")
    assert (run.shape.model_dim, run.total_batch_size, run.grad_accum_steps) == (
        model_dim,
        total,
        accum,
    )


def test_the_data_ratio_moves_the_auto_batch_size_only_through_the_ratio_of_horizons():
    small = step("python -m scripts.base_train --depth=6 --target-param-data-ratio=3\n")
    assert small.total_batch_size == 262144


def test_runcpu_like_script_reads_variables_vocab_and_exported_dtype():
    base, evaluation, sft = (d.value for d in steps((DATA / "runs" / "runcpu.sh").read_text()))
    assert base is not None and evaluation is not None and sft is not None
    assert (base.shape.depth, base.shape.model_dim, base.shape.n_head, base.shape.head_dim) == (
        6,
        384,
        6,
        64,
    )
    assert (base.shape.vocab_size, base.shape.window_pattern, base.shape.seq_len) == (
        4096,
        "L",
        512,
    )
    assert (base.device_batch_size, base.world_size, base.total_batch_size) == (32, 1, 16384)
    assert (base.grad_accum_steps, base.dtype) == (1, "float32")
    assert base.notes[:2] == (
        "vocab 4096 from --vocab-size of scripts.tok_train (line 5)",
        "NANOCHAT_DTYPE=float32",
    )
    assert (evaluation.device_batch_size, evaluation.total_batch_size) == (1, 512)
    assert (sft.device_batch_size, sft.shape.seq_len, sft.total_batch_size) == (32, 512, 16384)


@pytest.mark.parametrize(
    ("gpu", "dtype", "note"),
    [
        ("h100-80gb", "bfloat16", "auto: h100-80gb is SM 90 (bf16 supported)"),
        ("rtx4090", "bfloat16", "auto: rtx4090 is SM 89 (bf16 supported)"),
        ("t4", "float32", "auto: t4 is SM 75 (pre-Ampere: float32)"),
    ],
)
def test_compute_dtype_follows_the_gpu(gpu, dtype, note):
    run = step("python -m scripts.base_train --depth=4\n", gpu)
    assert (run.dtype, run.notes[1]) == (dtype, note)


def test_nanochat_dtype_on_the_line_wins():
    run = step("NANOCHAT_DTYPE=float16 python -m scripts.base_train --depth=4\n", "t4")
    assert run.dtype == "float16"


def test_an_unknown_nanochat_dtype_is_a_problem():
    assert problems("NANOCHAT_DTYPE=fp8 python -m scripts.base_train\n") == (
        Problem(
            "NANOCHAT_DTYPE",
            "NANOCHAT_DTYPE=fp8: nanochat/common.py knows only bfloat16, float16, float32 "
            "(KeyError when it is imported)",
        ),
    )
    text = "export NANOCHAT_DTYPE=$DT\npython -m scripts.base_train\n"
    assert problems(text) == (
        Problem(
            "NANOCHAT_DTYPE",
            "NANOCHAT_DTYPE is not known: $DT (line 1) is not assigned in the script",
            unknown=True,
        ),
    )


def test_a_batch_that_does_not_divide_the_total_quotes_base_trains_assert():
    text = (
        "torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=20 --device-batch-size=24\n"
    )
    assert problems(text) == (
        Problem(
            "total_batch_size",
            "base_train.py asserts: total_batch_size (1048576) must be a multiple of 393216. "
            "(device batch 24 x seq len 2048 x world 8)",
        ),
    )


def test_a_world_size_override_replaces_the_launchers():
    text = (
        "torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=24 --device-batch-size=16\n"
    )
    run = step(text, world=1)
    assert (run.world_size, run.grad_accum_steps, run.notes[2]) == (1, 32, "world size 1 (given)")


def test_chat_sft_without_a_base_run_uses_its_fallbacks_and_says_so():
    run = step("torchrun --nproc_per_node=8 -m scripts.chat_sft\n")
    assert (run.shape.depth, run.shape.model_dim, run.shape.seq_len) == (20, 1280, 2048)
    assert (run.device_batch_size, run.total_batch_size, run.grad_accum_steps) == (32, 524288, 1)
    assert run.notes[3:] == (
        "no base_train run in the script: the checkpoint is taken to be base_train.py's "
        "defaults (depth 20, max_seq_len 2048, window pattern SSSL)",
        "max_seq_len=2048: chat_sft.py's fallback (no base_train run in the script, so the "
        "checkpoint's value is not known)",
        "device_batch_size=32: chat_sft.py's fallback (no base_train run in the script, so the "
        "checkpoint's value is not known)",
        "total_batch_size=524288: chat_sft.py's fallback (no base_train run in the script, so "
        "the checkpoint's value is not known)",
    )


def test_chat_sfts_own_flags_override_what_it_inherits():
    text = (
        "python -m scripts.base_train --depth=12 --max-seq-len=1024\n"
        "python -m scripts.chat_sft --device-batch-size=4 --max-seq-len=512\n"
    )
    run = step(text)
    assert (run.device_batch_size, run.shape.seq_len, run.total_batch_size) == (4, 512, 524288)
    assert run.grad_accum_steps == 524288 // (4 * 512)
    assert run.notes[-2:] == (
        "total_batch_size=524288 inherited from the checkpoint of base_train at line 1",
        "max_seq_len 512 differs from the model's sequence_len 1024: "
        "the window sizes follow 512 here",
    )


def test_chat_sft_asserts_like_base_train():
    text = "python -m scripts.chat_sft --device-batch-size=3\n"
    assert problems(text) == (
        Problem(
            "total_batch_size",
            "chat_sft.py asserts: total_batch_size (524288) must be a multiple of 6144. "
            "(device batch 3 x seq len 2048 x world 1)",
        ),
    )


def test_a_base_run_that_cannot_be_derived_stops_what_loads_it():
    text = "python -m scripts.base_train --window-pattern=SXL\npython -m scripts.base_eval\n"
    assert problems(text) == (
        Problem(
            "window_pattern",
            "the base model (base_train, line 1): Invalid window_pattern: SXL. Use only S and L. "
            "(gpt.py `_compute_window_sizes` asserts it)",
        ),
    )


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        ("--depth=0", "depth"),
        ("--head-dim=63", "head_dim"),
        ("--head-dim=0", "head_dim"),
        ("--window-pattern=", "window_pattern"),
        ("--device-batch-size=0", "device_batch_size"),
        ("--max-seq-len=0", "max_seq_len"),
    ],
)
def test_dimensions_nanochat_rejects_are_problems(flags, key):
    found = problems(f"python -m scripts.base_train {flags}\n")
    assert [p.key for p in found] == [key]
    assert not found[0].unknown


def test_a_zero_data_ratio_with_the_auto_batch_size_divides_by_zero():
    (problem,) = problems("python -m scripts.base_train --target-param-data-ratio=0\n")
    assert problem.key == "target_param_data_ratio"
    assert "ZeroDivisionError" in problem.message


def test_the_vocabulary_is_padded_to_64():
    text = "python -m scripts.tok_train --vocab-size=50257\npython -m scripts.base_train\n"
    run = step(text)
    assert (run.shape.vocab_size, run.shape.padded_vocab) == (50257, 50304)


def test_argparse_errors_stop_the_run_with_line_and_column():
    assert problems("python -m scripts.base_train --de=4\n") == (
        Problem(
            "arguments",
            "base_train.py exits (argparse, line 1 column 30): ambiguous option: --de could "
            "match --device-type, --depth, --device-batch-size",
        ),
    )


def test_a_loop_of_runs_reports_what_only_running_gives():
    found = problems((DATA / "runs" / "miniseries.sh").read_text())
    assert found == (
        Problem(
            "world_size",
            "the world size is not known: `${NPROC_PER_NODE:-8}` (line 3)",
            unknown=True,
        ),
        Problem(
            "arguments",
            "$DEVICE_BATCH_SIZE_ARG is set inside an `if` (line 8): a word that may set any flag "
            "(line 12)",
            unknown=True,
        ),
        Problem("depth", "--depth is not known: the loop variable of `for` (line 4)", unknown=True),
    )


def test_a_forks_defaults_count(fork):
    path = fork.root / "scripts" / "base_train.py"
    path.write_text(path.read_text().replace("default=20,", "default=8,"))
    run = step("python -m scripts.base_train\n", checkout=fork)
    assert (run.shape.depth, run.shape.model_dim) == (8, 512)


def test_a_checkout_without_tok_train_cannot_tell_the_vocabulary(fork):
    (fork.root / "scripts" / "tok_train.py").unlink()
    assert problems("python -m scripts.base_train\n", checkout=fork) == (
        Problem(
            "vocab_size",
            f"{fork.root}/scripts/tok_train.py is missing: the tokenizer's vocab size is not known",
            unknown=True,
        ),
    )


def test_tok_train_runs_no_step():
    (invocation,) = read_invocations("python -m scripts.tok_train\n")
    assert derive_step(invocation, CHECKOUT, H100) == Derived(
        None, (Problem("script", "tok_train runs no training step"),)
    )


def test_a_world_of_no_process_is_a_problem():
    assert problems("torchrun --nproc_per_node=0 -m scripts.base_train\n") == (
        Problem("world_size", "torchrun --nproc_per_node=0 starts no process"),
    )
    assert problems("python -m scripts.base_train\n", world=0) == (
        Problem("world_size", "a world size of 0 starts no process"),
    )


@pytest.mark.parametrize(("ratio", "error"), [("inf", "OverflowError"), ("nan", "ValueError")])
def test_a_data_ratio_int_cannot_take_is_base_trains_error(ratio, error):
    assert problems(f"python -m scripts.base_train --target-param-data-ratio={ratio}\n") == (
        Problem(
            "target_param_data_ratio",
            f"--target-param-data-ratio={float(ratio)}: base_train's int(ratio * params) "
            f"raises {error}",
        ),
    )


def test_a_sequence_of_no_tokens_in_chat_sft_divides_by_zero():
    assert problems("python -m scripts.chat_sft --max-seq-len=0\n") == (
        Problem(
            "max_seq_len",
            "--max-seq-len=0: a micro-batch of no tokens (chat_sft.py's "
            "`total_batch_size % (B * T * world)` raises ZeroDivisionError)",
        ),
    )


def test_a_forks_compute_dtypes_count(fork):
    path = fork.root / "nanochat" / "common.py"
    path.write_text(path.read_text().replace('"float16": "fp16", ', ""))
    text = "NANOCHAT_DTYPE=float16 python -m scripts.base_train\n"
    assert problems(text, checkout=fork) == (
        Problem(
            "NANOCHAT_DTYPE",
            "NANOCHAT_DTYPE=float16: nanochat/common.py knows only bfloat16, float32 "
            "(KeyError when it is imported)",
        ),
    )
    path.write_text("_DTYPE_MAP = dict(bfloat16=1)\n")
    assert problems(text, checkout=fork) == (
        Problem(
            "NANOCHAT_DTYPE",
            f"NANOCHAT_DTYPE=float16: {path}: no _DTYPE_MAP = {{...}} found",
            unknown=True,
        ),
    )
