"""The analytical estimate: parameter counts, kernel choice, each term, and the batch search."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlint.facts.cudablocks import fresh_block_size
from gptlint.facts.gpus import get_profile
from gptlint.facts.units import GIB
from gptlint.runmodel.estimate import (
    EFFICIENT,
    FLASH,
    MATH,
    activation_bytes,
    attention_kernel,
    estimate_memory,
    largest_batch,
    largest_fitting,
    loss_bytes,
    manual_attention_bytes,
    math_attention_bytes,
    rebatch,
)
from gptlint.runmodel.trainingrun import ModelShape, StepSpec, count_params

RTX4070, T4, A100 = get_profile("rtx4070"), get_profile("t4"), get_profile("a100-80gb")


def run_of(n_layer, n_head, n_embd, vocab, bias, dropout, batch, block, dtype="bfloat16"):
    """The step of a scratch run of this shape (the estimate's input), accumulating gradients
    over micro-steps as nanoGPT's configs do."""
    shape = ModelShape(n_layer, n_head, n_embd, block, vocab, bias, dropout)
    return StepSpec(shape, batch, block, 8, dtype, False)


SEED = run_of(12, 12, 576, 50304, False, 0.0, 16, 1024)
GPT2 = run_of(12, 12, 768, 50304, False, 0.0, 12, 1024)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((6, 384, 65, 256, False), 10.65),
        ((12, 768, 50304, 1024, False), 123.59),
        ((12, 768, 50257, 1024, True), 123.65),
        ((48, 1600, 50257, 1024, True), 1555.97),
        ((12, 576, 50304, 1024, False), 76.77),
        ((12, 480, 50304, 1024, False), 57.34),
        ((12, 720, 50304, 1024, False), 110.89),
        ((12, 512, 50304, 1024, False), 63.52),
    ],
)
def test_parameter_counts_match_nanogpt(shape, expected):
    assert round(count_params(*shape) / 1e6, 2) == expected


def test_kernel_choice_follows_pytorch():
    assert attention_kernel(RTX4070, True, 64, 0.0) == FLASH
    assert attention_kernel(RTX4070, True, 42, 0.0) == FLASH  # padded to 48
    assert attention_kernel(RTX4070, True, 208, 0.0) == EFFICIENT  # sm89 flash backward
    assert attention_kernel(RTX4070, True, 512, 0.0) == EFFICIENT
    assert attention_kernel(RTX4070, True, 260, 0.0) == MATH
    assert attention_kernel(RTX4070, False, 64, 0.0) == EFFICIENT  # fp32: no flash
    assert attention_kernel(T4, True, 64, 0.0) == EFFICIENT
    assert attention_kernel(T4, True, 42, 0.0) == MATH
    assert attention_kernel(A100, True, 208, 0.0) == FLASH


def test_static_terms_are_16_bytes_per_parameter_in_the_allocators_blocks():
    terms = estimate_memory(GPT2, RTX4070).terms
    params = GPT2.shape.num_params(non_embedding=False)
    copy = sum(fresh_block_size(4 * n) * k for n, k in GPT2.shape.parameter_numels().items())
    assert terms["parameters"] == terms["gradients"] == copy
    assert terms["optimizer_state"] == 2 * copy
    assert 4 * params < copy < 4 * params * 1.005
    xl = run_of(48, 25, 1600, 50257, True, 0.0, 1, 1024)
    xl_copy = estimate_memory(xl, RTX4070).terms["parameters"]
    # c_fc's 40.96 MB weight takes its whole 41.94 MB segment: 2.1% more than 4 B each
    assert xl_copy / (4 * xl.shape.num_params(non_embedding=False)) == pytest.approx(
        1.021, abs=1e-3
    )


def test_parameter_numels_add_up_to_nanogpts_count():
    for shape in (GPT2.shape, dataclasses.replace(GPT2.shape, bias=True, block_size=256)):
        numels = shape.parameter_numels()
        assert sum(n * k for n, k in numels.items()) == shape.num_params(non_embedding=False)


def test_without_accumulation_no_gradients_exist_when_the_backward_starts():
    """`zero_grad(set_to_none=True)` after each step: the only micro-step has no `.grad`."""
    alone = estimate_memory(dataclasses.replace(GPT2, gradient_accumulation_steps=1), RTX4070)
    accumulating = estimate_memory(GPT2, RTX4070)
    assert alone.terms["gradients"] == 0
    assert accumulating.tensors - alone.tensors == accumulating.terms["gradients"]


def test_a_large_model_at_batch_1_peaks_when_its_gradients_come_out():
    """gpt2-xl at batch 1 compiled: the backward graph returns every gradient at once beside
    the accumulated `.grad`; eager adds each into `.grad` as it is made."""
    xl = run_of(48, 25, 1600, 50257, True, 0.0, 1, 1024)
    compiled = estimate_memory(dataclasses.replace(xl, compile=True), RTX4070).terms
    eager = estimate_memory(xl, RTX4070).terms
    assert compiled["gradients"] == 2 * compiled["parameters"]
    assert compiled["activations"] == 0
    assert eager["gradients"] == eager["parameters"]
    assert eager["activations"] > 0  # eager's peak stays at the start of the backward


def test_tensor_bytes_match_the_cross_checks():
    """12.85 GiB for GPT-2 124M at batch 12 (independent estimate ~12.4 GiB, fake-tensor replay
    12.88 GiB), 14.37 GiB for 12/12/576 at batch 16 (replay 14.40 GiB)."""
    for run, expected in ((GPT2, 12.85), (SEED, 14.37)):
        terms = estimate_memory(run, RTX4070).terms
        tensors = sum(
            v for k, v in terms.items() if k not in ("allocator_overhead", "cuda_context")
        )
        assert tensors / GIB == pytest.approx(expected, abs=0.01)


def test_loss_buffers_are_12_bytes_per_logit_in_16_bit_and_16_in_fp32():
    elements = SEED.tokens * SEED.shape.vocab_size
    assert loss_bytes(SEED) == 12 * elements
    assert loss_bytes(dataclasses.replace(SEED, dtype="float32")) == 16 * elements


def test_math_fallback_adds_the_attention_matrix_per_layer():
    run = run_of(12, 12, 504, 50304, False, 0.0, 8, 1024)
    flash, math = estimate_memory(run, RTX4070), estimate_memory(run, T4)
    assert (flash.kernel, math.kernel) == (FLASH, MATH)
    per_layer = 8 * 12 * 1024 * 1024 * 4
    assert math_attention_bytes(run) == per_layer
    extra = math.terms["activations"] - flash.terms["activations"]
    assert extra > 12 * per_layer
    assert (
        math_attention_bytes(
            dataclasses.replace(run, shape=dataclasses.replace(run.shape, dropout=0.1))
        )
        == per_layer * 9 // 4
    )


def test_estimate_grows_with_batch_and_largest_batch_fits():
    small, large = (
        estimate_memory(dataclasses.replace(SEED, batch_size=1), RTX4070),
        estimate_memory(SEED, RTX4070),
    )
    assert small.total < large.total
    budget = RTX4070.usable_bytes
    best = largest_batch(SEED, RTX4070, budget)
    assert estimate_memory(dataclasses.replace(SEED, batch_size=best), RTX4070).total <= budget
    assert estimate_memory(dataclasses.replace(SEED, batch_size=best + 1), RTX4070).total > budget
    assert largest_batch(run_of(48, 25, 1600, 50257, True, 0.0, 1, 1024), RTX4070, budget) == 0


@settings(max_examples=300, deadline=None)
@given(
    shape=st.sampled_from([(6, 6, 384), (12, 12, 768), (12, 8, 512), (24, 16, 1024), (4, 4, 128)]),
    vocab=st.sampled_from([65, 50304]),
    block=st.sampled_from([64, 256, 1024]),
    accumulation=st.sampled_from([1, 8]),
    dtype=st.sampled_from(["bfloat16", "float32"]),
    compile_=st.booleans(),
    gpu=st.sampled_from([RTX4070, T4, A100]),
    budget_gib=st.floats(0.5, 90),
    limit=st.sampled_from([1, 2, 3, 64, 4096]),
)
def test_largest_batch_is_the_answer_of_doubling_and_bisection(
    shape, vocab, block, accumulation, dtype, compile_, gpu, budget_gib, limit
):
    """The line-guided search finds what doubling and bisection over the estimate find, for
    every shape, budget and limit."""
    spec = dataclasses.replace(
        run_of(*shape, vocab, False, 0.0, 1, block, dtype),
        gradient_accumulation_steps=accumulation,
        compile=compile_,
    )
    budget = int(budget_gib * GIB)

    def fits(batch: int) -> bool:
        return estimate_memory(dataclasses.replace(spec, batch_size=batch), gpu).total <= budget

    assert largest_batch(spec, gpu, budget, limit) == largest_fitting(fits, limit)


def test_breakdown_names_every_term():
    text = estimate_memory(SEED, RTX4070).breakdown()
    for label in ("parameters", "gradients", "AdamW state", "activations", "logits and loss"):
        assert label in text
    assert text.endswith(" GiB")


@pytest.mark.parametrize(
    ("batch", "gas", "max_batch", "world", "expected"),
    [
        (16, 32, 10, 1, (8, 64)),
        (12, 40, 7, 1, (6, 80)),
        (12, 40, 11, 8, (10, 48)),
        (16, 32, 64, 1, (64, 8)),
        (3, 1, 2, 1, (1, 3)),
        (3, 1, 2, 2, None),
    ],
)
def test_rebatch_keeps_tokens_per_iteration(batch, gas, max_batch, world, expected):
    assert rebatch(batch, gas, max_batch, world) == expected


def test_a_small_vocabulary_peaks_in_the_last_blocks_backward():
    """shakespeare_char's 65 tokens: the loss buffers are small, so the MLP backward's
    gradients on top of every saved activation are the peak; GPT-2's vocabulary keeps it at
    the loss."""
    char = run_of(6, 6, 384, 65, False, 0.2, 64, 256)
    terms = estimate_memory(char, RTX4070).terms
    saved = activation_bytes(char, FLASH)
    c = char.shape.n_embd
    assert terms["activations"] == saved + char.tokens * (4 * c + 2 * c + 8 * c)
    assert terms["logits_and_loss"] == 2 * char.tokens * 65
    assert estimate_memory(GPT2, RTX4070).terms["activations"] == activation_bytes(GPT2, FLASH)


def test_the_cuda_context_is_the_cards_figure_or_the_setting():
    from gptlint.facts.gpus import with_context

    assert estimate_memory(GPT2, RTX4070).terms["cuda_context"] == 500 * 2**20  # default
    assert estimate_memory(GPT2, A100).terms["cuda_context"] == 863 * 2**20
    given = with_context(RTX4070, 700 * 2**20, "the cuda-context setting")
    assert estimate_memory(GPT2, given).total - estimate_memory(GPT2, RTX4070).total == 200 * 2**20


def test_manual_attention_keeps_fp32_softmax_and_its_16_bit_copy_per_score_and_layer():
    # a fork's `self.flash = False`: the estimate used to give it flash attention's terms
    spec = run_of(12, 12, 768, 50304, False, 0.0, 4, 1024, dtype="float16")
    manual = dataclasses.replace(spec, manual_attention=True)
    scores = 4 * 12 * 1024 * 1024
    assert estimate_memory(manual, A100).kernel == "manual"
    assert "manual attention" in estimate_memory(manual, A100).kernel.label
    flash = estimate_memory(spec, A100).terms["activations"]
    masks = 12 * 1024 * 1024 * 4  # each layer's fp32 causal-mask buffer
    lse = 4 * 1024 * 12 * 4 * 12  # flash's logsumexp, which manual attention does not keep
    gained = estimate_memory(manual, A100).terms["activations"] - flash
    assert gained == 12 * scores * (4 + 2) + masks - lse
    dropped = dataclasses.replace(manual, shape=dataclasses.replace(manual.shape, dropout=0.1))
    assert manual_attention_bytes(dropped) == scores * (4 + 2 + 1)
    fp32 = dataclasses.replace(manual, dtype="float32")
    assert manual_attention_bytes(fp32) == scores * 4


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_a_loop_that_drops_the_logits_is_estimated_one_logits_tensor_lower(compile):
    # the simulation's figures for 12/12/768 fp16 batch 12 eager: 12.875 -> 11.725 GiB
    spec = dataclasses.replace(GPT2, dtype="float16", compile=compile)
    dropped = dataclasses.replace(spec, keeps_logits=False)
    logits = 12 * 1024 * 50304 * 2
    assert estimate_memory(spec, A100).tensors - estimate_memory(dropped, A100).tensors == logits
