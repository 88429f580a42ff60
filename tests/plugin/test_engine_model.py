"""The built-in nanoGPT model: parameter counts, forward contract, optimizer groups."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gptlint.runmodel.trainingrun import ModelShape, count_params  # noqa: E402
from pytest_gptcfg.engine.nanogpt import GPT  # noqa: E402

# DESIGN.md "Reference parameter counts": (n_layer, n_head, n_embd, block, vocab, bias) -> M
REFERENCE_COUNTS = [
    ((6, 6, 384, 256, 65, False), "10.65M"),
    ((12, 12, 768, 1024, 50304, False), "123.59M"),
    ((12, 12, 768, 1024, 50257, True), "123.65M"),
    ((48, 25, 1600, 1024, 50257, True), "1555.97M"),
    ((12, 12, 576, 1024, 50304, False), "76.77M"),
    ((12, 12, 480, 1024, 50304, False), "57.34M"),
    ((12, 12, 720, 1024, 50304, False), "110.89M"),
    ((12, 8, 512, 1024, 50304, False), "63.52M"),
]


def meta_model(n_layer, n_head, n_embd, block, vocab, bias, dropout=0.0):
    with torch.device("meta"):
        return GPT(ModelShape(n_layer, n_head, n_embd, block, vocab, bias, dropout))


@pytest.mark.parametrize(("dims", "expected"), REFERENCE_COUNTS)
def test_parameter_counts_match_the_reference_figures(dims, expected):
    model = meta_model(*dims)
    n_layer, _, n_embd, block, vocab, bias = dims
    assert f"{model.get_num_params() / 1e6:.2f}M" == expected
    assert model.get_num_params() == count_params(n_layer, n_embd, vocab, block, bias)
    assert model.get_num_params(non_embedding=False) == count_params(
        n_layer, n_embd, vocab, block, bias, non_embedding=False
    )


def test_head_count_does_not_change_the_parameter_count():
    assert (
        meta_model(12, 8, 768, 1024, 50304, False).get_num_params()
        == meta_model(12, 12, 768, 1024, 50304, False).get_num_params()
    )


def test_token_embedding_is_tied_to_lm_head():
    model = meta_model(2, 2, 64, 32, 100, False)
    assert model.transformer.wte.weight is model.lm_head.weight


def test_forward_returns_full_logits_and_a_scalar_loss():
    torch.manual_seed(0)
    model = GPT(ModelShape(2, 2, 32, 16, 50, True, 0.1))
    idx = torch.randint(0, 50, (3, 16))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 16, 50)
    assert loss.shape == ()
    assert 3.0 < loss.item() < 5.0  # about ln(50) at init
    logits, loss = model(idx)
    assert logits.shape == (3, 1, 50)
    assert loss is None


def test_targets_of_minus_one_are_ignored():
    torch.manual_seed(0)
    model = GPT(ModelShape(1, 2, 32, 8, 20, False, 0.0)).eval()
    idx = torch.randint(0, 20, (2, 8))
    targets = idx.clone()
    targets[:, 4:] = -1
    logits, loss = model(idx, targets)
    kept = torch.nn.functional.cross_entropy(logits[:, :4].reshape(-1, 20), idx[:, :4].reshape(-1))
    assert loss.item() == pytest.approx(kept.item())


def test_sequence_longer_than_block_size_is_rejected():
    model = GPT(ModelShape(1, 2, 32, 8, 20, False, 0.0))
    with pytest.raises(ValueError, match="block_size 8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_n_embd_not_divisible_by_n_head_is_rejected():
    with pytest.raises(ValueError, match="not divisible"):
        meta_model(12, 12, 512, 1024, 50304, False)


def test_weight_decay_applies_to_matrices_only_and_fused_only_on_cuda():
    model = meta_model(2, 2, 64, 32, 100, True)
    optimizer = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cpu")
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert not optimizer.defaults["fused"]
    assert model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cuda").defaults["fused"]


def test_residual_projections_get_the_scaled_init():
    torch.manual_seed(0)
    model = GPT(ModelShape(8, 4, 128, 16, 50, False, 0.0))
    proj = model.transformer.h[0].mlp.c_proj.weight
    fc = model.transformer.h[0].mlp.c_fc.weight
    assert proj.std().item() == pytest.approx(0.02 / 4, rel=0.1)
    assert fc.std().item() == pytest.approx(0.02, rel=0.1)
