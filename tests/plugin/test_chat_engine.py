"""nanochat runs in the engine: the test checkout (tests/data/nanochat) trains for real, and
its step simulated on fake tensors holds what nanochat's step holds."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("torch")

from gptlint.facts.gpus import get_profile
from gptlint.facts.kinds import AttentionKernel, MemoryMode
from gptlint.runmodel.chatestimate import estimate_chat_memory
from gptlint.runmodel.chatparams import parameter_bytes, parameter_counts
from gptlint.runmodel.chatrun import ChatShape, ChatStep
from pytest_gptcfg.engine import chatcheck
from pytest_gptcfg.engine.chatcheck import (
    ChatModelError,
    check_chat_memory,
    find_max_device_batch,
)
from pytest_gptcfg.engine.compiled import CompiledUnavailable
from pytest_gptcfg.engine.simulate import cublas_workspace_bytes

CHECKOUT = Path(__file__).resolve().parents[1] / "data" / "nanochat"

REAL_STEP = """\
import torch
from nanochat.common import COMPUTE_DTYPE
from nanochat.gpt import GPT, GPTConfig

config = GPTConfig(sequence_len=64, vocab_size=500, n_layer=2, n_head=2, n_kv_head=2,
                   n_embd=128, window_pattern="SL")
with torch.device("meta"):
    model = GPT(config)
model.to_empty(device="cpu")
model.init_weights()
optimizer = model.setup_optimizer()
torch.manual_seed(0)
x, y = torch.randint(0, 500, (2, 64)), torch.randint(0, 500, (2, 64))
before = {name: p.detach().clone() for name, p in model.named_parameters()}
losses = []
for _ in range(3):
    loss = model(x, y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    optimizer.step()
    model.zero_grad(set_to_none=True)
    losses.append(loss.item())
unchanged = [n for n, p in model.named_parameters() if torch.equal(before[n], p)]
print(COMPUTE_DTYPE, model.transformer.wte.weight.dtype, model.lm_head.weight.dtype,
      model.window_sizes, losses[-1] < losses[0], unchanged)
"""


@pytest.mark.parametrize(
    ("dtype", "embeddings"), [("float32", "torch.float32"), ("bfloat16", "torch.bfloat16")]
)
def test_the_test_checkout_trains_on_cpu(dtype, embeddings):
    """Depth 2, 64 tokens, real tensors: the loss falls and every parameter moves; the
    embeddings are in the compute dtype, the Linears' master weights fp32; layer 0 is a
    short window (64 // 4 rounded up to 128 covers the context), the last always full.
    The optimizer's compiled kernels run eagerly (TORCHDYNAMO_DISABLE) to keep this quick."""
    env = {**os.environ, "NANOCHAT_DTYPE": dtype, "TORCHDYNAMO_DISABLE": "1", "PYTHONPATH": "."}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the test data
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REAL_STEP)],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"torch.{dtype} {embeddings} torch.float32 [(128, 0), (64, 0)] True []"
    )


# --------------------------------------------------------------------------- the simulation

GiB, MiB = 1024**3, 1024**2
H100, RTX4090 = get_profile("h100-80gb"), get_profile("rtx4090")
SHAPE = ChatShape(4, 256, 4, 4, 4000, 256, "SSSL")
"""Depth 4, 256 wide (head_dim 64), 256 tokens: layers 0-2 attend to 128 tokens, layer 3 to all."""
STEP = ChatStep("base_train", SHAPE, 4, 1, 2048, 2, "bfloat16", False, False, True)
"""An eager step (compiled=False) of two micro-steps of 4 sequences."""


def simulate(step: ChatStep = STEP, gpu=H100, checkout: Path = CHECKOUT, budget: int = 80 * GiB):
    return check_chat_memory(step, checkout, gpu, budget, mode="simulate")


def tensors(result, gpu) -> int:
    """The simulated peak's tensors, less the two cuBLAS workspaces the estimate leaves out."""
    return result.peak_allocated_bytes - 2 * cublas_workspace_bytes(gpu.compute_capability)


@pytest.mark.parametrize(
    ("gpu", "dtype", "world"),
    [(H100, "bfloat16", 1), (H100, "bfloat16", 8), (RTX4090, "bfloat16", 1),
     (RTX4090, "float32", 2)],
)  # fmt: skip
def test_the_eager_step_agrees_with_gptlints_eager_estimate(gpu, dtype, world):
    step = dataclasses.replace(STEP, dtype=dtype, world_size=world, total_batch_size=2048 * world)
    result = simulate(step, gpu)
    estimate = estimate_chat_memory(step, gpu)
    assert result.mode == MemoryMode.SIMULATED and not result.compiled
    assert tensors(result, gpu) == pytest.approx(estimate.tensors, rel=0.05)
    for key in ("parameters", "gradients", "adamw_state", "muon_state", "attention"):
        assert result.breakdown[key] == pytest.approx(estimate.terms[key], rel=0.01), key
    assert result.breakdown["logits_and_loss"] == estimate.terms["logits_and_loss"]
    total = parameter_counts(SHAPE)["total"]
    assert result.params == (total, total)


def test_eight_ranks_shard_the_optimizer_state_and_one_rank_stacks_every_matrix():
    """Few tokens and wide matrices, so the optimizer step is the peak. On eight ranks AdamW
    keeps 1/8 of its state and Muon the state of its chunk of each group (ceil(K/8)
    matrices); on one rank MuonAdamW holds the stacked gradients and the stacked parameters
    of every group at once: two fp32 copies of the matrices."""
    shape = ChatShape(4, 512, 8, 8, 512, 64, "L")
    one = ChatStep("base_train", shape, 1, 1, 64, 1, "bfloat16", False, False, True)
    eight = dataclasses.replace(one, world_size=8, total_batch_size=512)
    single, sharded = simulate(one), simulate(eight)
    for result, step in ((single, one), (sharded, eight)):
        estimate = estimate_chat_memory(step, H100)
        assert estimate.phase == "optimizer step"
        for key in ("parameters", "gradients", "adamw_state", "muon_state"):
            assert result.breakdown[key] == pytest.approx(estimate.terms[key], rel=0.01), key
    assert sharded.breakdown["optimizer_step"] == pytest.approx(
        estimate_chat_memory(eight, H100).terms["optimizer_step"], rel=0.05
    )
    assert sharded.breakdown["adamw_state"] < single.breakdown["adamw_state"] / 7
    assert sharded.breakdown["muon_state"] < single.breakdown["muon_state"] / 4
    matrices = 12 * 4 * 512 * 512 * 4
    assert single.breakdown["optimizer_step"] > 2 * matrices
    assert "rank 0 of 8: the collectives are not run" in sharded.notes


def test_flashattention_3_on_hopper_and_masked_sdpa_on_an_rtx_4090():
    """FA3 saves the same q, k, v, output and logsumexp as SDPA's kernels; SDPA's
    sliding-window layers (0-2) pass a bool mask, which runs mem-efficient attention and
    saves the 256 x 256 bf16 bias CUDA makes of it."""
    hopper, ada = simulate(gpu=H100), simulate(gpu=RTX4090)
    assert hopper.attention_kernel == AttentionKernel.FLASH
    assert any(note.startswith("attention: FlashAttention-3") for note in hopper.notes)
    assert ada.attention_kernel == AttentionKernel.EFFICIENT
    assert any("memory-efficient attention (sliding-window layers)" in n for n in ada.notes)
    assert ada.breakdown["attention"] - hopper.breakdown["attention"] == 3 * 256 * 256 * 2


def test_bfloat16_casts_weights_and_float32_does_not():
    bf16, fp32 = simulate(), simulate(dataclasses.replace(STEP, dtype="float32"))
    assert bf16.breakdown["weight_casts"] > 0
    assert fp32.breakdown["weight_casts"] == 0
    for result, step in ((bf16, STEP), (fp32, dataclasses.replace(STEP, dtype="float32"))):
        assert result.breakdown["parameters"] == pytest.approx(parameter_bytes(step), rel=0.01)
    assert fp32.breakdown["parameters"] > bf16.breakdown["parameters"], "bf16 embeddings"


def test_an_evaluation_step_holds_no_gradients_and_no_optimizer_state():
    evaluation = dataclasses.replace(STEP, script="base_eval", training=False)
    result = simulate(evaluation)
    assert result.breakdown["gradients"] == result.breakdown["adamw_state"] == 0
    assert result.breakdown["parameters"] > 0
    assert tensors(result, H100) < tensors(simulate(), H100)


def test_a_step_past_the_budget_does_not_fit():
    result = simulate(budget=H100.context_bytes + 100 * MiB)
    assert not result.fits and result.oom
    assert any("a real run raises CUDA out of memory" in note for note in result.notes)


def test_a_step_past_the_budget_leaves_a_memory_viz_snapshot_and_a_chart(tmp_path):
    path = tmp_path / "snaps" / "train.pickle"
    budget = H100.context_bytes + 100 * MiB
    result = check_chat_memory(STEP, CHECKOUT, H100, budget, mode="simulate", snapshot=path)
    assert not result.fits
    assert result.notes[-1] == (
        f"memory snapshot: {path} (open it at https://pytorch.org/memory_viz);"
        f" breakdown chart: {path.with_suffix('.svg')}"
    )
    snapshot = pickle.loads(path.read_bytes())
    trace = snapshot["device_traces"][0]
    assert {"segment_map", "alloc", "free_completed", "oom"} <= {e["action"] for e in trace}
    assert all(s["is_expandable"] for s in snapshot["segments"])
    assert ET.parse(path.with_suffix(".svg")).getroot().tag.endswith("svg")


def test_an_estimate_or_a_step_that_fits_leaves_no_snapshot(tmp_path):
    path = tmp_path / "s.pickle"
    fp8 = dataclasses.replace(STEP, fp8=True)
    budget = H100.context_bytes + 10 * MiB
    estimated = check_chat_memory(fp8, CHECKOUT, H100, budget, mode="simulate", snapshot=path)
    assert (estimated.mode, estimated.fits) == (MemoryMode.ESTIMATED, False)
    fits = check_chat_memory(STEP, CHECKOUT, H100, 80 * GiB, mode="simulate", snapshot=path)
    assert fits.fits
    assert list(tmp_path.iterdir()) == []
    assert not any("snapshot" in note for note in (*estimated.notes, *fits.notes))


def test_the_expandable_segments_allocator_is_what_base_train_sets():
    result = simulate()
    assert any("PYTORCH_ALLOC_CONF=expandable_segments:True" in note for note in result.notes)
    assert 0 <= result.breakdown["allocator_overhead"] < 64 * MiB


def test_measuring_nanochat_is_not_implemented_and_simulates_instead():
    result = check_chat_memory(STEP, CHECKOUT, H100, 80 * GiB, mode="cuda")
    assert result.mode == MemoryMode.SIMULATED
    assert any("measuring nanochat runs on CUDA" in note for note in result.notes)


# --------------------------------------------------------------------------- compiled, fp8


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (CompiledUnavailable("a graph break in GPT.forward"), "a graph break in GPT.forward"),
        (RuntimeError("lowering\nmore"), "the compiled simulation failed: RuntimeError: lowering"),
    ],
)
def test_a_compiled_run_that_cannot_be_planned_gets_the_compiled_estimate(
    monkeypatch, error, reason
):
    """Never the eager figure: gptlint's estimate of the compiled step, with the reason."""

    def cannot_plan(*_):
        raise error

    monkeypatch.setattr(chatcheck, "simulate_chat_compiled", cannot_plan)
    compiled = dataclasses.replace(STEP, compiled=True)
    result = check_chat_memory(compiled, CHECKOUT, H100, 80 * GiB)
    estimate = estimate_chat_memory(compiled, H100)
    assert (result.mode, result.compiled) == (MemoryMode.ESTIMATED, True)
    assert result.peak_allocated_bytes == estimate.tensors
    assert result.breakdown == estimate.terms
    assert result.notes[0] == f"torch.compile not simulated: {reason}"


def test_an_eager_fp8_step_is_estimated_with_a_note():
    result = simulate(dataclasses.replace(STEP, fp8=True))
    assert result.mode == MemoryMode.ESTIMATED
    assert result.notes[0].startswith("fp8 not simulated")


# --------------------------------------------------------------------------- the largest batch


def test_the_largest_device_batch_is_the_largest_of_the_ladder_that_fits():
    """A budget above batch 2's reserved peak and below batch 4's tensors: 2 (a total of 32
    sequences divides for every rung). A known failure at 4 leaves only smaller batches to
    try; one at 1, none."""
    shape = ChatShape(2, 128, 2, 2, 8000, 256, "L")
    step = ChatStep("base_train", shape, 4, 1, 32 * 256, 8, "bfloat16", False, False, True)
    two, four = (simulate(dataclasses.replace(step, device_batch_size=b)) for b in (2, 4))
    assert two.peak_reserved_bytes < four.peak_allocated_bytes
    budget = H100.context_bytes + (two.peak_reserved_bytes + four.peak_allocated_bytes) // 2
    assert find_max_device_batch(step, CHECKOUT, H100, budget) == 2
    failed = check_chat_memory(step, CHECKOUT, H100, budget, mode="simulate")
    assert not failed.fits
    assert find_max_device_batch(step, CHECKOUT, H100, budget, known=failed) == 2
    one = dataclasses.replace(step, device_batch_size=1, grad_accum_steps=32)
    assert find_max_device_batch(one, CHECKOUT, H100, 0, known=failed) == 0


def test_the_search_starts_at_the_estimates_answer(monkeypatch):
    """Where gptlint's estimate names the answer, the search checks it and its neighbour above
    only (each check of a compiled step is a plan); a known result for one of them saves it."""
    shape = ChatShape(2, 128, 2, 2, 8000, 256, "L")
    step = ChatStep("base_train", shape, 32, 1, 32 * 256, 1, "bfloat16", False, False, True)
    budget = (
        H100.context_bytes
        + simulate(dataclasses.replace(step, device_batch_size=8)).peak_reserved_bytes
    )
    estimated = chatcheck.largest_device_batch(step, H100, budget)
    checked: list[int] = []
    real = chatcheck.check_chat_memory

    def counting(candidate: ChatStep, *args: object, **kwargs: object):
        checked.append(candidate.device_batch_size)
        return real(candidate, *args, **kwargs)

    monkeypatch.setattr(chatcheck, "check_chat_memory", counting)
    answer = find_max_device_batch(step, CHECKOUT, H100, budget)
    assert answer == estimated == 8
    assert checked == [8, 16]
    checked.clear()
    known = real(dataclasses.replace(step, device_batch_size=16), CHECKOUT, H100, budget)
    sixteen = dataclasses.replace(step, device_batch_size=16, grad_accum_steps=2)
    assert find_max_device_batch(sixteen, CHECKOUT, H100, budget, known=known) == 8
    assert checked == [8]


def test_an_evaluation_may_take_a_larger_batch():
    """base_eval has no total batch size to divide: the search goes above its batch."""
    shape = ChatShape(2, 128, 2, 2, 8000, 256, "L")
    step = ChatStep("base_eval", shape, 1, 1, 256, 1, "bfloat16", False, False, False)
    assert find_max_device_batch(step, CHECKOUT, H100, 80 * GiB) == 32


# --------------------------------------------------------------------------- the checkout's code


def test_importing_the_checkout_defers_its_torch_compile():
    """The checkout's `@torch.compile` decorators keep their functions (run eagerly by the
    simulation anyway) and do not load Dynamo: a cached check pays no second for it."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pytest_gptcfg.engine.chatimport import checkout_modules\n"
        f"with checkout_modules(Path({str(CHECKOUT)!r}), 'bfloat16') as modules:\n"
        "    import nanochat.optim as optim\n"
        "    print(optim.adamw_step_fused.__name__, 'torch._dynamo' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["adamw_step_fused", "False"]


@pytest.fixture
def fork(tmp_path: Path) -> Path:
    """A copy of the test checkout, to break."""
    return Path(shutil.copytree(CHECKOUT, tmp_path / "fork"))


def test_a_module_the_environment_lacks_is_named_with_its_file_and_line(fork, monkeypatch):
    common = fork / "nanochat" / "common.py"
    common.write_text("import os\nimport no_such_module_xyz\n" + common.read_text())
    users_own = types.ModuleType("nanochat")
    monkeypatch.setitem(sys.modules, "nanochat", users_own)
    path, dtype = list(sys.path), os.environ.get("NANOCHAT_DTYPE")
    with pytest.raises(ChatModelError) as raised:
        simulate(checkout=fork)
    assert str(raised.value) == (
        "nanochat/common.py:2 imports no_such_module_xyz, which is not installed in this "
        "environment: install the checkout's requirements"
    )
    assert sys.modules["nanochat"] is users_own
    assert not any(name.startswith("nanochat.") for name in sys.modules)
    assert (sys.path, os.environ.get("NANOCHAT_DTYPE")) == (path, dtype)


def test_an_error_in_the_checkouts_model_is_named_with_its_line(fork):
    gpt = fork / "nanochat" / "gpt.py"
    text = gpt.read_text().replace(
        "        self.config = config\n", "        self.config = config\n        1 / 0\n"
    )
    gpt.write_text(text)
    line = text.splitlines().index("        1 / 0") + 1
    expected = rf"^nanochat/gpt.py:{line}: GPT\(GPTConfig\(\.\.\.\)\) raised ZeroDivisionError"
    with pytest.raises(ChatModelError, match=expected):
        simulate(checkout=fork)


def test_a_forward_that_reads_a_value_is_named_with_its_line(fork):
    """Fake tensors hold no values: a forward that branches on one cannot be simulated."""
    gpt = fork / "nanochat" / "gpt.py"
    text = gpt.read_text().replace(
        "        B, T = idx.size()\n",
        "        B, T = idx.size()\n        if idx.max() > 0:\n            pass\n",
    )
    gpt.write_text(text)
    line = text.splitlines().index("        if idx.max() > 0:") + 1
    with pytest.raises(ChatModelError, match=rf"^nanochat/gpt.py:{line}: the training step raised"):
        simulate(checkout=fork)


def test_a_model_without_setup_optimizer_is_named(fork):
    gpt = fork / "nanochat" / "gpt.py"
    gpt.write_text(gpt.read_text().replace("def setup_optimizer(", "def make_optimizer("))
    with pytest.raises(ChatModelError, match=r"GPT has no setup_optimizer\(\)"):
        simulate(checkout=fork)


def test_two_checkouts_in_one_session_never_mix(fork):
    """A fork without value embeddings, between two runs of the test checkout."""
    gpt = fork / "nanochat" / "gpt.py"
    gpt.write_text(gpt.read_text().replace("return layer % 2 == (n_layer - 1) % 2", "return False"))
    before = simulate()
    without = simulate(checkout=fork)
    after = simulate()
    embeddings = 2 * 4032 * 256 * 2  # two value embeddings (layers 1 and 3), bf16
    assert before.breakdown["parameters"] - without.breakdown["parameters"] >= embeddings
    assert after.breakdown == before.breakdown
    assert "nanochat" not in sys.modules


def test_a_checkout_without_flash_attn_func_runs_its_own_attention_with_a_note(fork):
    """On Hopper the FA3 stand-in replaces `flash_attn.flash_attn_func`; a fork that calls
    its attention by another name keeps its own (here SDPA: mem-efficient for the masks)."""
    for name in ("gpt.py", "flash_attention.py"):
        path = fork / "nanochat" / name
        path.write_text(path.read_text().replace("flash_attn_func", "attend"))
    result = simulate(checkout=fork)
    assert (
        "nanochat/gpt.py has no flash_attn.flash_attn_func to replace with FlashAttention-3's "
        "stand-in: its own attention ran instead"
    ) in result.notes
    assert result.attention_kernel == AttentionKernel.EFFICIENT
    assert not any(note.startswith("attention: FlashAttention-3") for note in result.notes)
