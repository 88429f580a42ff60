"""nanochat's analytical estimate: parameter counts, the state terms at world 1 and 8, the
attention kernel and fp8 per GPU, the phases of the peak and the device-batch ladder."""

from __future__ import annotations

import dataclasses

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.facts.kinds import AttentionKernel
from gptlint.facts.units import GIB
from gptlint.runmodel.chatestimate import (
    CHAT_BREAKDOWN_LABELS,
    chat_figures,
    estimate_chat_memory,
    largest_device_batch,
    with_device_batch,
)
from gptlint.runmodel.chatkernels import chat_attention, fp8_linear, fp8_use
from gptlint.runmodel.chatparams import (
    adamw_state_bytes,
    gradient_bytes,
    matrix_groups,
    muon_state_bytes,
    optimizer_step_bytes,
    parameter_bytes,
    parameter_counts,
)
from gptlint.runmodel.chatrun import ChatShape, ChatStep
from gptlint.runmodel.chatsaved import compiled_logits_bytes, eager_logits_bytes

H100, RTX4090, A100, T4 = (get_profile(n) for n in ("h100-80gb", "rtx4090", "a100-80gb", "t4"))


def chat_step(depth, batch=32, world=8, total=1_048_576, **options):
    """base_train's step at `--depth`: model_dim = ceil(depth * 64 / 128) * 128, heads of
    128, vocabulary 32768, 2048 tokens, window pattern SSSL, bf16, compiled."""
    head_dim = options.pop("head_dim", 128)
    dim = -(-depth * 64 // head_dim) * head_dim
    shape = ChatShape(
        depth,
        dim,
        dim // head_dim,
        dim // head_dim,
        options.pop("vocab", 32768),
        options.pop("seq_len", 2048),
        options.pop("window_pattern", "SSSL"),
    )
    accumulation = total // (batch * shape.seq_len * world)
    settings = {"dtype": "bfloat16", "fp8": False, "compiled": True, "training": True}
    settings.update(options)
    return ChatStep("base_train", shape, batch, world, total, accumulation, **settings)


@pytest.mark.parametrize(
    ("depth", "millions", "value_embeds"),
    [(12, 286.3, 151.0), (20, 896.5, 419.4), (24, 1384.1, 604.0), (26, 1681.8, 708.8)],
)
def test_parameter_counts_match_nanochat(depth, millions, value_embeds):
    counts = parameter_counts(chat_step(depth).shape)
    assert round(counts["total"] / 1e6, 1) == millions
    assert round(counts["value_embeds"] / 1e6, 1) == value_embeds


def test_d20_counts_term_by_term():
    # 20 layers of 12 d^2 matrices plus ten 10 x 12 value-embedding gates; lm_head and wte
    # are 32768 x 1280 each; 40 lambdas, smear_gate's 24 weights, smear and backout lambdas
    counts = parameter_counts(chat_step(20).shape)
    assert counts["transformer_matrices"] == 12 * 20 * 1280**2 + 10 * 10 * 12
    assert counts["lm_head"] == counts["wte"] == 32768 * 1280
    assert counts["value_embeds"] == 10 * 32768 * 1280
    assert counts["scalars"] == 66


def test_padded_vocabulary_sizes_the_embeddings():
    counts = parameter_counts(chat_step(4, vocab=50257).shape)
    assert counts["wte"] == 50304 * 256


def test_parameters_are_fp32_matrices_and_bf16_embeddings():
    step = chat_step(20)
    counts = parameter_counts(step.shape)
    fp32 = counts["transformer_matrices"] + counts["lm_head"] + counts["scalars"]
    bf16 = counts["wte"] + counts["value_embeds"]
    assert parameter_bytes(step) == 4 * fp32 + 2 * bf16
    assert gradient_bytes(step) == parameter_bytes(step)
    assert round(parameter_bytes(step) / GIB, 3) == 2.480


def test_fp16_keeps_the_embeddings_in_fp32():
    step = chat_step(20, dtype="float16")
    assert parameter_bytes(step) == 4 * parameter_counts(step.shape)["total"]


def test_adamw_state_is_sharded_over_ranks():
    # exp_avg + exp_avg_sq in the parameter's dtype: 8 B per lm_head weight, 4 B per bf16
    # embedding weight, 1/N of each on N ranks; the 66 scalars stay whole (< 1024 elements)
    v, d = 32768, 1280
    full = 8 * v * d + 4 * v * d * 11 + 8 * 66
    assert adamw_state_bytes(chat_step(20, world=1)) == full
    assert adamw_state_bytes(chat_step(20, world=8)) == (full - 8 * 66) // 8 + 8 * 66


def test_muon_state_is_padded_chunks_of_each_shape_group():
    groups = {(g.rows, g.cols): g.count for g in matrix_groups(chat_step(20).shape)}
    assert groups == {(10, 12): 10, (1280, 1280): 80, (1280, 5120): 20, (5120, 1280): 20}
    d = 1280
    # world 8 owns ceil(K/8): 10 of the 80 square matrices, 3 of each 20 MLP matrices,
    # 2 of the 10 gates; the second moment is one row or column per owned matrix
    eight = 4 * (10 * (d * d + d) + 3 * (4 * d * d + 4 * d) * 2 + 2 * (120 + 12))
    assert muon_state_bytes(chat_step(20, world=8)) == eight
    one = 4 * (80 * (d * d + d) + 20 * (4 * d * d + 4 * d) * 2 + 10 * (120 + 12))
    assert muon_state_bytes(chat_step(20, world=1)) == one


def test_single_rank_step_holds_two_extra_stacks_of_the_matrices():
    # grad_chunk and stacked_owned for every group, and the kernel's bf16 work on the last
    step = chat_step(20, world=1)
    matrices = 4 * parameter_counts(step.shape)["transformer_matrices"]
    kernel = 20 * (5 * 4 * 1280**2 + 1280**2) * 2
    assert optimizer_step_bytes(step) == 2 * matrices + kernel


def test_multi_rank_step_holds_padded_stacks_and_chunks():
    step = chat_step(20, world=8)
    d = 1280
    stacked = 4 * d * d * (80 + 24 * 4 + 24 * 4)  # ceil(K/8) * 8 per group
    assert stacked < optimizer_step_bytes(step) < stacked + GIB


def test_h100_runs_flash_attention_3():
    attention = chat_attention(chat_step(20), H100)
    assert attention.fa3
    assert attention.label == "FlashAttention-3"


def test_rtx4090_runs_sdpa_with_the_efficient_kernel_on_window_layers():
    attention = chat_attention(chat_step(20), RTX4090)
    assert not attention.fa3
    assert attention.full == AttentionKernel.FLASH
    assert attention.window == AttentionKernel.EFFICIENT
    assert "explicit mask" in attention.reason
    assert attention.label == (
        "SDPA: flash attention (full layers), memory-efficient attention (sliding-window layers)"
    )


def test_hopper_without_bf16_falls_back_to_sdpa():
    attention = chat_attention(chat_step(20, dtype="float32"), H100)
    assert not attention.fa3
    assert attention.full == attention.window == AttentionKernel.EFFICIENT
    assert "bf16" in attention.reason


def test_math_kernel_materialises_the_scores():
    # head_dim 100 is not a multiple of 8: flash pads it (full layers), memory-efficient
    # cannot run it, so the masked sliding-window layers fall to math
    step = chat_step(4, head_dim=100, batch=2, world=1, total=2 * 2048)
    attention = chat_attention(step, RTX4090)
    assert (attention.full, attention.window) == (AttentionKernel.FLASH, AttentionKernel.MATH)
    estimate = estimate_chat_memory(step, RTX4090)
    short_layers = sum(1 for size in step.shape.window_sizes if size < 2048)
    scores = 2 * step.shape.n_head * 2048**2
    assert short_layers == 3
    assert estimate.terms["attention"] > short_layers * 4 * scores


def test_sliding_window_bias_only_under_sdpa():
    # eager, each short layer saves its own T x T bf16 bias; compiled, the masks are one
    step = chat_step(20, compiled=False)
    fa3 = estimate_chat_memory(step, H100).terms["attention"]
    sdpa = estimate_chat_memory(step, A100).terms["attention"]
    short_layers = sum(1 for size in step.shape.window_sizes if size < 2048)
    assert short_layers == 15
    assert sdpa - fa3 == short_layers * 2 * 2048**2
    compiled = dataclasses.replace(step, compiled=True)
    once = estimate_chat_memory(compiled, A100).terms["attention"]
    assert once - estimate_chat_memory(compiled, H100).terms["attention"] == 2 * 2048**2


@pytest.mark.parametrize(
    ("gpu", "applies", "fails"), [(H100, True, False), (RTX4090, True, False), (A100, False, True)]
)
def test_fp8_needs_compute_capability_8_9(gpu, applies, fails):
    use = fp8_use(chat_step(26, fp8=True), gpu)
    assert (use.applies, use.fails) == (applies, fails)


def test_fp8_off_unless_requested():
    assert not fp8_use(chat_step(26), H100).applies


def test_fp8_filter_skips_the_gates():
    assert fp8_linear(1664, 6656)
    assert not fp8_linear(12, 13)  # ve_gate
    assert not fp8_linear(24, 1)  # smear_gate
    assert not fp8_linear(64, 1000)


def test_eager_fp8_saves_fp8_inputs_and_weights():
    bf16 = estimate_chat_memory(chat_step(26, batch=16, compiled=False), H100)
    fp8 = estimate_chat_memory(chat_step(26, batch=16, compiled=False, fp8=True), H100)
    assert fp8.terms["weight_casts"] * 2 == pytest.approx(bf16.terms["weight_casts"], rel=0.001)
    assert fp8.terms["activations"] < bf16.terms["activations"]
    assert fp8.terms["attention"] == bf16.terms["attention"]


def test_compiled_fp8_recomputes_its_inputs_and_keeps_its_fp8_weights():
    # per layer the normed x for q, k, v, the MLP's normed x and its ReLU^2 output (6 d-vectors
    # of 2 B on layers without a value embedding) are no longer saved; a few fp8 copies are
    step = chat_step(26, batch=16)
    bf16 = estimate_chat_memory(step, H100).terms
    fp8 = estimate_chat_memory(dataclasses.replace(step, fp8=True), H100).terms
    # the 13 ve_gates (12 -> 13) and smear_gate (24 -> 1) keep 16-bit weight casts; every
    # other Linear its fp8 weight (1 B) and an fp32 scale: 12 d^2 per layer and the lm_head
    d, vocab = 1664, 32768
    fp8_weights = 26 * (12 * d * d + 6 * 4) + (d * vocab + 4)
    assert fp8["weight_casts"] == 2 * (13 * 12 * 13 + 24) + fp8_weights
    tokens = 16 * 2048
    per_layer = 12 * d - 1.5 * d
    assert bf16["activations"] - fp8["activations"] == pytest.approx(
        26 * per_layer * tokens + 2 * d * tokens, rel=0.01
    )


def test_fp8_on_an_a100_is_estimated_as_the_bf16_step():
    fp8 = estimate_chat_memory(chat_step(20, fp8=True), A100)
    bf16 = estimate_chat_memory(chat_step(20), A100)
    assert fp8.fp8.fails
    assert fp8.total == bf16.total


def test_compiled_loss_is_the_bf16_logits_whose_buffer_takes_their_gradient():
    step = chat_step(20)
    tokens = 32 * 2048
    assert compiled_logits_bytes(step) == tokens * (2 * 32768 + 8)
    # an fp8 lm_head's backward: the fp32 gradient and two e5m2 copies beside the logits
    assert compiled_logits_bytes(step, fp8=True) == tokens * (8 * 32768 + 8)
    assert eager_logits_bytes(step) == 16 * tokens * 32768


def test_eager_and_compiled_figures_differ_by_the_loss_recomputed_mixes_and_rotary_sign():
    figures = chat_figures(chat_step(20), H100)
    eager, compiled = figures["eager"].terms, figures["compiled"].terms
    differing = {key for key in CHAT_BREAKDOWN_LABELS if eager[key] != compiled[key]}
    assert differing == {"activations", "logits_and_loss", "rotary", "allocator_overhead"}
    assert eager["logits_and_loss"] - compiled["logits_and_loss"] == 28 * GIB - 8 * 65536
    # eager, each layer's rotary products save -sin (2 x T x head_dim / 2, bf16); compiled none
    assert eager["rotary"] - compiled["rotary"] == 20 * 2 * 2048 * 64 * 2
    assert eager["weight_casts"] == compiled["weight_casts"]  # Inductor saves the casts too


def test_breakdown_names_every_nonzero_term():
    estimate = estimate_chat_memory(chat_step(20), H100)
    assert list(estimate.terms) == list(CHAT_BREAKDOWN_LABELS)
    text = estimate.breakdown()
    assert text.startswith("parameters 2.48 + gradients 2.48 + AdamW state 0.25")
    assert "optimizer step buffers" not in text  # the backward's start is the peak here
    assert text.endswith("CUDA context 0.49 GiB")


def test_gradients_wait_for_the_second_micro_step():
    one = estimate_chat_memory(chat_step(20, total=524_288), H100)
    two = estimate_chat_memory(chat_step(20), H100)
    assert one.phase == two.phase == "backward start"
    assert one.terms["gradients"] == 0
    assert two.terms["gradients"] == gradient_bytes(chat_step(20))


def test_small_batches_on_one_gpu_peak_in_the_optimizer_step():
    estimate = estimate_chat_memory(chat_step(20, batch=1, world=1), H100)
    assert estimate.phase == "optimizer step"
    assert estimate.terms["optimizer_step"] == optimizer_step_bytes(chat_step(20, world=1))


def test_compiled_backward_returns_every_gradient_at_once():
    # a tiny batch of a model whose gradients (large embeddings) outweigh Muon's stacks
    step = chat_step(20, batch=1, world=8, seq_len=128, vocab=131072, total=8 * 128 * 4)
    estimate = estimate_chat_memory(step, H100)
    assert estimate.phase == "backward end"
    assert estimate.terms["gradients"] == 2 * gradient_bytes(step)
    eager = estimate_chat_memory(dataclasses.replace(step, compiled=False), H100)
    assert eager.terms["gradients"] == gradient_bytes(step)


def test_evaluation_holds_no_gradients_or_state():
    step = chat_step(20, training=False, compiled=False)
    estimate = estimate_chat_memory(step, H100)
    assert estimate.phase == "forward"
    assert estimate.terms["gradients"] == estimate.terms["adamw_state"] == 0
    assert estimate.terms["logits_and_loss"] == 12 * 32 * 2048 * 32768


def test_device_batch_recomputes_gradient_accumulation():
    step = chat_step(20, batch=32, world=8)
    assert step.grad_accum_steps == 2
    smaller = with_device_batch(step, 4)
    assert smaller is not None
    assert (smaller.device_batch_size, smaller.grad_accum_steps) == (4, 16)


def test_device_batch_that_base_train_rejects():
    # 2048 x 3 tokens per step cannot be split into micro-batches of 2 x 2048 on one rank
    assert with_device_batch(chat_step(4, batch=1, world=1, total=3 * 2048), 2) is None


@pytest.mark.parametrize(
    ("depth", "gpu", "world", "expected"),
    [
        (20, RTX4090, 1, 4),  # nanochat #157 ran d20 on one 4090 at batch 4; #237: 3090, 4
        (20, H100, 8, 32),  # the default fits 8 H100s compiled
        (24, H100, 8, 16),  # "batch size that doesn't OOM on 8XH100 for d24 is 16"
        (26, RTX4090, 1, None),  # d26 alone does not fit in 24 GB at any batch
    ],
)
def test_largest_device_batch_on_the_ladder(depth, gpu, world, expected):
    step = chat_step(depth, world=world, total=1_048_576 if world > 1 else 524_288)
    assert largest_device_batch(step, gpu, gpu.usable_bytes) == expected


def test_ladder_answer_fits_and_the_next_rung_does_not():
    step = chat_step(20, world=1, total=524_288)
    budget = 40 * GIB
    batch = largest_device_batch(step, H100, budget)
    assert batch == 8
    fitting, next_rung = with_device_batch(step, 8), with_device_batch(step, 16)
    assert fitting is not None and next_rung is not None
    assert estimate_chat_memory(fitting, H100).total <= budget
    assert estimate_chat_memory(next_rung, H100).total > budget


def test_full_context_pattern_needs_no_mask():
    attention = chat_attention(chat_step(20, window_pattern="L"), RTX4090)
    assert attention.reason == (
        "SDPA: FlashAttention-3 is taken only on Hopper (compute capability 9.x)"
    )
    assert attention.window is None
    assert attention.label == "SDPA: flash attention"
