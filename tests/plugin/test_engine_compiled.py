"""The compiled step's simulation: Inductor's plans in train.py's step, its fallbacks, its cache."""

from __future__ import annotations

import dataclasses
from unittest.mock import ANY

import pytest

torch = pytest.importorskip("torch")

from gptlint.facts.gpus import get_profile  # noqa: E402
from gptlint.runmodel.estimate import FLASH, estimate_memory  # noqa: E402
from gptlint.runmodel.trainingrun import ModelShape, StepSpec  # noqa: E402
from pytest_gptcfg.engine import compiled, compiledstep  # noqa: E402
from pytest_gptcfg.engine.check import check_memory  # noqa: E402
from pytest_gptcfg.engine.nanogpt import GPT  # noqa: E402

pytestmark = pytest.mark.slow  # Inductor plans each compiled step (seconds each, cold)

GiB = 1024**3
A100 = get_profile("a100-80gb")
# a large vocabulary beside a tiny model: the loss buffers dominate, as for GPT-2 at scale
WIDE = StepSpec(ModelShape(1, 2, 64, 64, 8192, False, 0.0), 8, 64, 1, "bfloat16", True)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gptcfg-plans"))


def simulate(spec=WIDE):
    return check_memory(spec, A100, 80 * GiB, mode="simulate")


def test_the_compiled_step_needs_less_than_the_eager_one_for_a_large_vocab():
    eager = simulate(dataclasses.replace(WIDE, compile=False))
    result = simulate()
    assert result.compiled and not eager.compiled
    assert any("torch.compile simulated" in note for note in result.notes)
    assert result.peak_allocated_bytes < eager.peak_allocated_bytes
    logits = WIDE.tokens * WIDE.shape.vocab_size
    # eager keeps 12 B per logit at its peak, compiled 6 (logits, zero grad, logits' grad)
    assert eager.breakdown["logits_and_loss"] >= 12 * logits
    assert 6 * logits <= result.breakdown["logits_and_loss"] < 7 * logits


def test_a_cached_plan_gives_exactly_the_same_result():
    first = simulate()
    files = list(compiledstep.plan_cache_dir().glob("plan-*.json"))
    assert files
    second = simulate()
    assert any("plan from the cache" in note for note in second.notes)
    assert second.peak_allocated_bytes == first.peak_allocated_bytes
    assert second.peak_reserved_bytes == first.peak_reserved_bytes
    assert second.breakdown == first.breakdown
    assert second.largest_tensors == first.largest_tensors


def test_planning_pauses_the_collector_and_leaves_the_process_as_it_found_it(monkeypatch, tmp_path):
    import gc
    import importlib.util
    import sys

    from pytest_gptcfg.engine import forked, torchapi

    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path))  # cold: Inductor plans the step
    monkeypatch.setattr(forked, "ENABLED", False)  # planned here, where the spy sees it
    seen = []
    generate = torchapi.generate_wrapper

    def spied(*args, **kwargs):
        seen.append((gc.isenabled(), sys.modules.get("numpy", "unmarked")))
        return generate(*args, **kwargs)

    monkeypatch.setattr(torchapi, "generate_wrapper", spied)
    numpy_installed = importlib.util.find_spec("numpy") is not None
    assert simulate().compiled and seen
    # while planning: no collection; an absent NumPy known absent (torch asks for it often)
    assert not any(enabled for enabled, _ in seen)
    assert all((numpy is None) != numpy_installed for _, numpy in seen)
    assert gc.isenabled()
    assert sys.modules.get("numpy") is not None or "numpy" not in sys.modules


def test_what_planning_leaves_out_of_torchs_work_changes_no_wrapper(monkeypatch):
    """Inductor's second fake-tensor pass over each graph, and the graphs printed as text for
    torch's logs: neither runs while planning, and the wrappers and plans are those made with
    both."""
    import contextlib

    from pytest_gptcfg.engine import forked, torchapi

    torchapi.load_compiler()  # Inductor's modules, loaded as the plugin loads them
    import torch._inductor.compile_fx as compile_fx

    monkeypatch.setattr(forked, "ENABLED", False)  # lowered here, where the spies see it
    spec = dataclasses.replace(WIDE, shape=dataclasses.replace(WIDE.shape, dropout=0.1))
    target = compiled.nanogpt_target(spec, 8, torch.bfloat16, FLASH)
    passes, printed = [], []
    propagate, print_readable = compile_fx.fake_tensor_prop, torch.fx.GraphModule.print_readable

    def propagated(*args, **kwargs):
        passes.append(1)
        return propagate(*args, **kwargs)

    def printed_readable(*args, **kwargs):
        printed.append(1)
        return print_readable(*args, **kwargs)

    monkeypatch.setattr(compile_fx, "fake_tensor_prop", propagated)
    monkeypatch.setattr(torch.fx.GraphModule, "print_readable", printed_readable)
    left_out = compiled.capture_graphs(target, symbolic=True)
    assert not passes and not printed
    monkeypatch.setattr(torchapi, "_traced_values_kept", contextlib.nullcontext)
    monkeypatch.setattr(torchapi, "_graphs_unprinted", contextlib.nullcontext)
    run = compiled.capture_graphs(target, symbolic=True)
    assert len(passes) == 2  # the forward's and the backward's
    assert printed
    assert left_out["fw"]["wrapper"] == run["fw"]["wrapper"]
    assert left_out["bw"]["wrapper"] == run["bw"]["wrapper"]
    assert compiled.plan_at(left_out, 8) == compiled.plan_at(run, 8) | {"seconds": ANY}


def _fallback_note(result):
    """The note of a compiled run whose verdict is gptlint's estimate of the compiled step."""
    assert result.mode == "estimated" and result.compiled
    assert any(n.startswith("estimated (no step run)") for n in result.notes)
    notes = [n for n in result.notes if n.startswith("torch.compile not simulated")]
    assert len(notes) == 1
    return notes[0]


def test_dropout_is_simulated_compiled_and_keeps_a_bool_mask_per_dropout():
    spec = dataclasses.replace(WIDE, shape=dataclasses.replace(WIDE.shape, dropout=0.1))
    without, result = simulate(), simulate(spec)
    assert result.compiled
    assert not any(n.startswith("torch.compile not simulated") for n in result.notes)
    # Inductor saves each dropout's mask for the backward: the embedding's and two per layer
    masks = (1 + 2 * spec.shape.n_layer) * spec.tokens * spec.shape.n_embd
    assert result.breakdown["activations"] - without.breakdown["activations"] == masks
    assert result.peak_allocated_bytes - without.peak_allocated_bytes == masks


def test_a_projects_own_model_is_planned_compiled_as_nanogpts_is():
    own = simulate(dataclasses.replace(WIDE, model_factory=GPT))
    builtin = simulate()
    assert own.compiled and own.mode == "simulated"
    assert own.peak_allocated_bytes == builtin.peak_allocated_bytes
    assert own.peak_reserved_bytes == builtin.peak_reserved_bytes


def test_a_torch_release_not_checked_is_planned_and_says_so(monkeypatch):
    monkeypatch.setattr(compiled, "TESTED_TORCH", ((1, 0), (1, 0)))
    result = simulate()
    assert result.compiled and result.mode == "simulated"
    assert any(f"torch {torch.__version__} is outside the releases" in n for n in result.notes)


def test_a_plan_that_cannot_be_read_gives_the_labelled_compiled_estimate(monkeypatch):
    def unreadable(*args, **kwargs):
        raise compiled.WrapperUnreadable("a wrapper of a torch from the future")

    monkeypatch.setattr(compiled, "run_call", unreadable)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(compiledstep.plan_cache_dir() / "unreadable"))
    result = simulate()
    assert "a wrapper of a torch from the future" in _fallback_note(result)
    estimate = estimate_memory(WIDE, A100)
    assert result.peak_allocated_bytes == estimate.tensors
    assert result.peak_reserved_bytes + result.context_bytes == estimate.total


def test_a_model_too_deep_to_plan_quickly_falls_back_with_a_note(monkeypatch):
    monkeypatch.setattr(compiledstep, "MAX_LAYERS", 0)
    assert "too long" in _fallback_note(simulate())


def test_a_failure_inside_torch_falls_back_with_a_note_not_a_traceback(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("inductor changed")

    monkeypatch.setattr(compiled, "capture_graphs", broken)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(compiledstep.plan_cache_dir() / "empty"))
    note = _fallback_note(simulate())
    assert "RuntimeError: inductor changed" in note


SIDE_EFFECT_PREAMBLE = "AUX = []  # as nanoMoE's MANAGER: the forward hands a loss to Python"
SIDE_EFFECT_FORWARD = """
    global AUX
    x = self.wte(idx)
    AUX.append(x.float().pow(2).mean())
    logits = self.head(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
    loss = loss + 0.01 * sum(AUX)
    AUX = []
    return logits, loss
"""


def test_a_forward_that_hands_tensors_to_python_is_planned_compiled(head_model):
    """Dynamo returns the tensors a forward appends to a module-level list beside the logits
    and the loss; the plan keeps them as the graph's further outputs, dropped by Python."""
    from pytest_gptcfg.engine.usermodel import model_factory

    model = head_model(SIDE_EFFECT_FORWARD, SIDE_EFFECT_PREAMBLE)
    spec = dataclasses.replace(WIDE, model_factory=model_factory(model))
    result = simulate(spec)
    assert (result.mode, result.compiled, result.upper_bound) == ("simulated", True, False)
    assert not any("not simulated" in note for note in result.notes)
