"""CUDA behaviour on CPU tensors: autocast casts, cross entropy, attention kernels, dropout."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.nn import functional as F  # noqa: E402

from pytest_gptcfg.engine import kernels  # noqa: E402
from pytest_gptcfg.engine.simulate import CudaBehaviour  # noqa: E402

ADA, TURING = (8, 9), (7, 5)


def grad_fn_names(t):
    names, fn = [], t.grad_fn
    while fn is not None:
        names.append(type(fn).__name__)
        nxt = [f for f, _ in fn.next_functions if f is not None and "AccumulateGrad" not in str(f)]
        fn = nxt[0] if nxt else None
    return names


def test_linear_runs_in_bf16_and_layer_norm_in_fp32():
    x = torch.randn(4, 8)
    w = torch.randn(16, 8, requires_grad=True)
    with CudaBehaviour(torch.bfloat16, ADA):
        y = F.linear(x, w)
        z = F.layer_norm(y, (16,))
        s = torch.softmax(y, dim=-1)
        m = x @ w.t()
    assert y.dtype == torch.bfloat16
    assert z.dtype == torch.float32
    assert s.dtype == torch.float32
    assert m.dtype == torch.bfloat16


def test_weight_casts_are_cached_within_one_region_only():
    w = torch.randn(8, 8, requires_grad=True)
    x = torch.randn(2, 8)
    behaviour = CudaBehaviour(torch.bfloat16, ADA)
    with behaviour:
        F.linear(x, w)
        F.linear(x, w)
        cached = behaviour.cache.cast(w, torch.bfloat16)
        assert cached is behaviour.cache.cast(w, torch.bfloat16)
    with behaviour:
        assert behaviour.cache.cast(w, torch.bfloat16) is not cached


def test_cross_entropy_keeps_log_softmax_in_bf16_and_runs_nll_in_fp32():
    logits = torch.randn(6, 10, requires_grad=True)
    targets = torch.tensor([1, 2, 3, -1, 0, 9])
    with CudaBehaviour(torch.bfloat16, ADA):
        loss = F.cross_entropy(logits.to(torch.bfloat16), targets, ignore_index=-1)
    assert loss.dtype == torch.float32
    assert grad_fn_names(loss)[:3] == ["NllLossBackward0", "ToCopyBackward0", "LogSoftmaxBackward0"]
    reference = F.cross_entropy(logits.to(torch.bfloat16).float(), targets, ignore_index=-1)
    assert loss.item() == pytest.approx(reference.item(), rel=0.02)


def test_float32_training_casts_nothing():
    w = torch.randn(16, 8, requires_grad=True)
    with CudaBehaviour(None, ADA):
        y = F.linear(torch.randn(4, 8), w)
        loss = F.cross_entropy(y, torch.tensor([0, 1, 2, 3]))
    assert y.dtype == torch.float32
    assert "ToCopyBackward0" not in grad_fn_names(loss)


@pytest.mark.parametrize(
    ("capability", "dtype", "head_dim", "dropout", "expected"),
    [
        (ADA, torch.bfloat16, 64, 0.0, "flash"),
        (ADA, torch.bfloat16, 36, 0.0, "flash"),  # padded to 40 inside SDPA
        (ADA, torch.bfloat16, 256, 0.0, "flash"),
        (ADA, torch.bfloat16, 260, 0.0, "math"),
        (ADA, torch.bfloat16, 200, 0.0, "efficient"),  # sm86/89 flash backward: no (192, 224]
        ((8, 0), torch.bfloat16, 200, 0.0, "flash"),
        (ADA, torch.bfloat16, 232, 0.1, "efficient"),
        (ADA, torch.float32, 64, 0.0, "efficient"),
        (ADA, torch.float32, 34, 0.0, "math"),
        (TURING, torch.float16, 64, 0.0, "efficient"),
        (TURING, torch.float16, 36, 0.0, "math"),
    ],
)
def test_attention_kernel_follows_sdp_utils(capability, dtype, head_dim, dropout, expected):
    assert kernels.attention_kernel(capability, dtype, head_dim, dropout) == expected


@pytest.mark.parametrize("head_dim", [16, 36])
def test_fused_and_math_stand_ins_compute_attention(head_dim):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, head_dim) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    fused = kernels.fused_attention(q, k, v, True, None)
    math_out = kernels.math_attention(q, k, v, True, 0.0, None)
    assert fused.shape == expected.shape
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(math_out, expected, atol=1e-5, rtol=1e-4)


def saved_tensors(t):
    """Every tensor saved for backward in the graph of `t`."""
    seen, stack, found = set(), [t.grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        found.extend(getattr(fn, "saved_tensors", ()))  # custom autograd Functions
        for attr in dir(fn):
            if attr.startswith("_saved_"):
                value = getattr(fn, attr)
                if isinstance(value, torch.Tensor):
                    found.append(value)
        stack.extend(f for f, _ in fn.next_functions)
    return found


def test_math_attention_keeps_fp32_scores_for_backward():
    q = torch.randn(1, 2, 16, 4, dtype=torch.bfloat16, requires_grad=True)
    out = kernels.math_attention(q, q, q, True, 0.0, None)
    assert out.dtype == torch.bfloat16
    scores = [s for s in saved_tensors(out) if s.shape[-2:] == (16, 16)]
    assert scores and all(s.dtype == torch.float32 for s in scores)
    fused_saved = saved_tensors(kernels.fused_attention(q, q, q, True, None))
    assert any(s.dtype == torch.float32 and s.shape == (1, 2, 16) for s in fused_saved), "lse"
    assert not [s for s in fused_saved if s.shape[-2:] == (16, 16)]


def test_sdpa_under_the_mode_uses_the_target_kernel():
    q = torch.randn(1, 2, 8, 260, requires_grad=True)
    behaviour = CudaBehaviour(torch.bfloat16, ADA)
    with behaviour:
        out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert behaviour.attention_kernels == {"math"}
    assert out.dtype == torch.bfloat16


def test_dropout_keeps_a_bool_mask_like_cuda():
    x = torch.randn(64, 64, requires_grad=True)
    y = kernels.dropout(x, 0.5, True)
    assert type(y.grad_fn).__name__ == "NativeDropoutBackward0"
    assert y.grad_fn._saved_result1.dtype == torch.bool
    assert kernels.dropout(x, 0.5, False) is x
    assert kernels.dropout(x, 0.0, True) is x


@pytest.mark.parametrize("head_dim", [16, 36])
def test_fused_stand_in_gradients_match_sdpa(head_dim):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, head_dim, requires_grad=True) for _ in range(3))
    kernels.fused_attention(q, k, v, True, None).square().sum().backward()
    expected = [t.grad for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, is_causal=True).square().sum().backward()
    for got, want in zip(expected, (q.grad, k.grad, v.grad), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def softmax_peak_bytes(dtype, log=False):
    """Peak bytes above the input while a manual-attention softmax runs forward and backward
    under the simulation's fake mode and CUDA behaviour (`dtype` the autocast dtype)."""
    from pytest_gptcfg.engine.allocator import CachingAllocator
    from pytest_gptcfg.engine.tracker import StorageTracker

    tracker = StorageTracker(CachingAllocator(), logits_numel=-1)
    with tracker.fake_mode(), torch.device("cpu"):
        scores = torch.empty(4, 4, 256, 256, dtype=dtype, requires_grad=True)
        base = tracker.allocator.allocated
        with CudaBehaviour(dtype, ADA):
            probs = (F.log_softmax if log else F.softmax)(scores, dim=-1)
        probs.sum().backward()
        assert (probs.dtype, scores.grad.dtype) == (torch.float32, dtype)
    return tracker.allocator.peak_allocated - base


@pytest.mark.parametrize("log", [False, True])
def test_fp16_softmax_writes_fp32_directly_like_cudas_half_to_float_kernel(log):
    n = 4 * 4 * 256 * 256
    # fp16: fp32 output (kept for backward) + the fp16 input gradient, no fp32 copy of the input
    assert softmax_peak_bytes(torch.float16, log) == pytest.approx(6 * n, abs=1024)
    # bf16: CUDA casts first (an fp32 copy), and the backward's fp32 gradient is cast back
    assert softmax_peak_bytes(torch.bfloat16, log) == pytest.approx(10 * n, abs=1024)
