"""A nanochat run under torch.compile, simulated: Inductor's plan of the test checkout's own
model replayed inside base_train's step (tests/data/nanochat, depth 4, 256 tokens)."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gptlint.facts.gpus import get_profile  # noqa: E402
from gptlint.facts.kinds import AttentionKernel, MemoryMode  # noqa: E402
from gptlint.runmodel.chatestimate import CHAT_BREAKDOWN_LABELS, estimate_chat_memory  # noqa: E402
from gptlint.runmodel.chatrun import ChatShape, ChatStep  # noqa: E402
from pytest_gptcfg.engine import chatcompiled  # noqa: E402
from pytest_gptcfg.engine.chatcheck import check_chat_memory  # noqa: E402
from pytest_gptcfg.engine.simulate import cublas_workspace_bytes  # noqa: E402

pytestmark = pytest.mark.slow  # Inductor plans each compiled step (seconds each, cold)

CHECKOUT = Path(__file__).resolve().parents[1] / "data" / "nanochat"
GIB, MIB = 1024**3, 1024**2
H100 = get_profile("h100-80gb")  # FlashAttention-3 (Hopper, bf16)
A100 = get_profile("a100-80gb")  # SDPA: flash for full layers, mem-efficient for windows
SHAPE = ChatShape(
    depth=4, model_dim=256, n_head=2, n_kv_head=2, vocab_size=8192, seq_len=256,
    window_pattern="SSSL",
)  # fmt: skip
STEP = ChatStep("base_train", SHAPE, 8, 1, 8 * 256 * 2, 2, "bfloat16", False, True, True)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gptcfg-plans"))


def check(step=STEP, profile=H100):
    return check_chat_memory(step, CHECKOUT, profile, 80 * GIB, mode="simulate")


def tensors(result, profile):
    """The peak's tensors less the two cuBLAS workspaces (gptlint's estimate has none)."""
    return result.peak_allocated_bytes - 2 * cublas_workspace_bytes(profile.compute_capability)


@pytest.mark.parametrize("profile", [H100, A100], ids=["fa3", "sdpa"])
def test_the_compiled_step_holds_less_than_the_eager_one_and_what_gptlint_estimates(profile):
    result = check(profile=profile)
    eager = check(dataclasses.replace(STEP, compiled=False), profile)
    assert result.compiled and result.mode == MemoryMode.SIMULATED
    planned = "torch.compile simulated: Inductor's memory plan"
    assert any(n.startswith(planned) for n in result.notes)
    assert list(result.breakdown) == list(CHAT_BREAKDOWN_LABELS)
    assert result.peak_allocated_bytes < eager.peak_allocated_bytes
    estimate = estimate_chat_memory(STEP, profile)
    assert tensors(result, profile) == pytest.approx(estimate.tensors, rel=0.05)
    for key in ("parameters", "adamw_state", "muon_state", "weight_casts", "attention"):
        assert result.breakdown[key] == pytest.approx(estimate.terms[key], rel=0.01), key


def test_sdpa_saves_one_sliding_window_bias_where_fa3_saves_none():
    fa3, sdpa = check(profile=H100), check(profile=A100)
    assert fa3.attention_kernel == AttentionKernel.FLASH
    assert sdpa.attention_kernel == AttentionKernel.EFFICIENT
    # three sliding-window layers, one T x T bf16 bias: computed once, kept for the backward
    bias = SHAPE.seq_len**2 * 2
    assert sdpa.breakdown["attention"] - fa3.breakdown["attention"] == pytest.approx(bias, abs=4096)


def test_eight_ranks_shard_the_optimizer_state_and_reuse_the_plan():
    one = check()
    eight = check(dataclasses.replace(STEP, world_size=8, total_batch_size=8 * 256 * 8 * 2))
    assert any("plan from the cache" in n for n in eight.notes)
    assert any(n.startswith("rank 0 of 8") for n in eight.notes)
    assert eight.breakdown["adamw_state"] < one.breakdown["adamw_state"] / 4
    assert eight.breakdown["activations"] == one.breakdown["activations"]
    assert eight.peak_allocated_bytes < one.peak_allocated_bytes


def test_a_cached_plan_gives_exactly_the_same_result():
    first = check()
    second = check()
    assert any("plan from the cache" in n for n in second.notes)
    assert second.peak_allocated_bytes == first.peak_allocated_bytes
    assert second.breakdown == first.breakdown


def test_a_torch_release_nanochat_was_not_checked_on_is_named(monkeypatch):
    """nanochat's compiled plan was checked on fewer releases than nanoGPT's: on another the
    verdict says so (torch 2.8 plans the logits' gradient in a buffer of its own)."""
    monkeypatch.setattr(chatcompiled.compiled.torch, "__version__", "2.8.0")
    notes = check().notes
    assert (
        "torch 2.8.0 is outside the releases nanochat's compiled simulation was checked on "
        "(2.13 to 2.14); its plan passed the checks"
    ) in notes
    monkeypatch.setattr(chatcompiled.compiled.torch, "__version__", "2.13.0")
    assert not any("outside the releases" in n for n in check().notes)


def test_a_compiled_step_over_budget_leaves_a_memory_viz_snapshot(tmp_path):
    path = tmp_path / "train.pickle"
    result = check_chat_memory(STEP, CHECKOUT, H100, 600 * MIB, mode="simulate", snapshot=path)
    assert (result.mode, result.compiled, result.fits) == (MemoryMode.SIMULATED, True, False)
    snapshot = pickle.loads(path.read_bytes())
    actions = {event["action"] for event in snapshot["device_traces"][0]}
    assert {"segment_map", "segment_unmap", "oom", "alloc", "free_completed"} <= actions
    assert all(segment["is_expandable"] for segment in snapshot["segments"])
    assert path.with_suffix(".svg").is_file()
    assert any(str(path) in note and "memory_viz" in note for note in result.notes)


def test_fp8_without_the_checkouts_fp8_module_gives_the_estimate_saying_why():
    result = check(dataclasses.replace(STEP, fp8=True))
    assert result.mode == MemoryMode.ESTIMATED and result.compiled
    [note] = [n for n in result.notes if n.startswith("torch.compile not simulated")]
    assert "fp8 not simulated: the checkout's nanochat.fp8 cannot be imported" in note


def test_a_step_too_deep_to_plan_quickly_is_refused(monkeypatch):
    monkeypatch.setattr(chatcompiled.compiledstep, "MAX_LAYERS", 2)
    with pytest.raises(chatcompiled.CompiledUnavailable, match="depth 4 > 2"):
        chatcompiled.simulate_chat_compiled(STEP, CHECKOUT, H100, 80 * GIB)
