"""report.py on hand-built results: the failure text, the JSON record, the table, -v status."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.facts.kinds import AttentionKernel, MemoryMode
from gptlint.runmodel.trainingrun import ModelShape, ModelSource, StepSpec, TrainingRun
from pytest_gptcfg import report
from pytest_gptcfg.results import MemoryResult

GiB, MiB = 1024**3, 1024**2
RTX4070 = get_profile("rtx4070")
BUDGET = RTX4070.usable_bytes
SHAPE = ModelShape(12, 12, 768, 1024, 50304, False, 0.0)
RUN = TrainingRun(
    StepSpec(SHAPE, 16, 1024, 40, "bfloat16", False),
    ModelSource(SHAPE, "scratch", "GPT-2's vocab, padded"),
    gradient_accumulation_steps=40,
    world_size=1,
    notes=("a note from the derivation",),
)
BREAKDOWN = {
    "parameters": GiB // 2,
    "gradients": GiB // 2,
    "optimizer_state": GiB,
    "weight_copies": GiB // 4,
    "activations": 6 * GiB,
    "logits_and_loss": 7 * GiB,
    "allocator_overhead": GiB,
    "cuda_context": 500 * MiB,
}
SIMULATED = MemoryResult(
    mode=MemoryMode.SIMULATED,
    fits=False,
    peak_allocated_bytes=15 * GiB,
    peak_reserved_bytes=16 * GiB,
    context_bytes=500 * MiB,
    budget_bytes=BUDGET,
    breakdown=BREAKDOWN,
    largest_tensors=[("bfloat16 16x1024x50304 logits", 1536 * MiB)],
    oom=True,
    torch_version="2.13.0",
    device_name="NVIDIA GeForce RTX 4070 (12 GB) (simulated)",
    attention_kernel=AttentionKernel.FLASH,
    notes=["a note from the engine"],
)
MEASURED = dataclasses.replace(
    SIMULATED, mode=MemoryMode.MEASURED, device_name="NVIDIA H200", notes=[]
)
FITS = dataclasses.replace(
    MEASURED, fits=True, oom=False, peak_allocated_bytes=5 * GiB, peak_reserved_bytes=6 * GiB
)


def test_failure_text_says_measured_on_the_device():
    text = report.failure_text("config/x.py", RTX4070, RUN, MEASURED, 11)
    first = text.splitlines()[0]
    assert first.startswith("config/x.py does not fit NVIDIA GeForce RTX 4070")
    assert "(eager step measured on NVIDIA H200; torch 2.13.0)" in first
    assert "simulated on fake tensors" not in text


def test_failure_text_says_simulated_on_fake_tensors():
    text = report.failure_text("config/x.py", RTX4070, RUN, SIMULATED, 11)
    assert (
        "(eager step simulated on fake tensors, no GPU used; torch 2.13.0)" in text.splitlines()[0]
    )
    assert "measured on" not in text
    assert "(the step ran out of memory)" in text
    assert "attention flash" in text


def test_failure_text_lists_the_breakdown_in_label_order_and_both_kinds_of_notes():
    lines = report.failure_text("config/x.py", RTX4070, RUN, SIMULATED, 11).splitlines()
    start = lines.index("  at the peak:")
    labels = [line.split("  ")[2] for line in lines[start + 1 : start + 9]]
    assert labels[0].startswith("parameters")
    assert any(label.startswith("autocast weight copies") for label in labels)
    assert "  note: a note from the derivation" in lines
    assert "  note: a note from the engine" in lines
    assert lines.index("  note: a note from the derivation") < lines.index(
        "  note: a note from the engine"
    )


@pytest.mark.parametrize(("result", "word"), [(MEASURED, "measured"), (SIMULATED, "simulated")])
def test_memory_record_names_the_mode_as_a_plain_word(result, word):
    record = report.memory_record("config/x.py", RTX4070, BUDGET, RUN, result, 11)
    assert record["mode"] == word
    assert type(record["mode"]) is str  # execnet refuses str subclasses such as the enum
    assert json.loads(json.dumps(record))["mode"] == word
    assert record["tokens_per_iter"] == 40 * 16 * 1024
    assert (record["fits"], record["max_batch_size"]) == (False, 11)


def test_memory_record_of_an_error_has_no_result():
    record = report.memory_record("config/x.py", RTX4070, BUDGET, error="boom")
    assert (record["error"], record["mode"], record["fits"]) == ("boom", None, None)


def test_the_summary_table_shows_the_mode_of_each_row():
    results = report.Results()
    records = {
        "config/a.py": report.memory_record("config/a.py", RTX4070, BUDGET, RUN, MEASURED, 0),
        "config/b.py": report.memory_record("config/b.py", RTX4070, BUDGET, RUN, FITS),
        "config/c.py": report.memory_record("config/c.py", RTX4070, BUDGET, error="x"),
    }
    for path, record in records.items():
        results.add(_report(f"{path}::memory[rtx4070]", [(report.MEMORY_KEY, record)]))
    header, a, b, c = results.summary()
    assert header.split() == [
        "config", "gpu", "mode", "params", "tokens/iter", "peak", "budget", "fits", "max", "batch"
    ]  # fmt: skip
    assert a.split() == [
        "config/a.py", "rtx4070", "measured", "(eager)", "123.59M", "655,360", "16.49", "GiB",
        "11.99",
        "GiB", "NO", "none",
    ]  # fmt: skip
    assert b.split()[2:4] == ["measured", "(eager)"] and b.split()[-2:] == ["yes", "-"]
    assert c.split() == ["config/c.py", "rtx4070", *"----", "11.99", "GiB", "error", "-"]


def test_the_summary_lists_lint_diagnostics_after_the_table():
    results = report.Results()
    results.add(_report("config/a.py::lint", [(report.LINT_KEY, ["config/a.py:1:1: W [warning]"])]))
    assert results.summary() == ["", "gptlint diagnostics:", "  config/a.py:1:1: W [warning]"]


def test_verbose_status_of_a_memory_item_that_fits():
    record = report.memory_record("config/x.py", RTX4070, BUDGET, RUN, FITS)
    status = report.verbose_status(_report("x", [(report.MEMORY_KEY, record)]))
    assert status == "PASSED (eager step measured: peak 6.49 GiB of 11.99 GiB)"


def test_verbose_status_is_none_for_everything_else():
    record = report.memory_record("config/x.py", RTX4070, BUDGET, RUN, MEASURED)
    assert report.verbose_status(_report("x", [(report.MEMORY_KEY, record)], "failed")) is None
    assert report.verbose_status(_report("x", [])) is None
    assert report.verbose_status(_report("x", [], when="setup")) is None
    assert report.verbose_status(_collect_report()) is None


def test_suggestion_keeps_tokens_per_iteration():
    text = report.suggestion(RUN, 8)
    assert "batch_size = 8, gradient_accumulation_steps = 80" in text
    assert "(same 655,360 tokens/iter)" in text
    assert "--gpt-set batch_size=8 --gpt-set gradient_accumulation_steps=80" in text


def test_suggestion_when_the_largest_batch_does_not_divide_the_sequences():
    text = report.suggestion(RUN, 7)  # 16 x 40 = 640 sequences: 5 x 128, not 7 x something
    assert text.startswith("the largest batch_size that fits is 7 (simulated); fits: ")
    assert "batch_size = 5, gradient_accumulation_steps = 128" in text


def test_suggestion_when_batch_one_does_not_fit():
    assert report.suggestion(RUN, 0).startswith("batch_size 1 does not fit either")


def test_results_ignore_reports_they_do_not_know():
    results = report.Results()
    results.add(_collect_report())
    results.add(_report("tests/test_x.py::test_a", [("someone_else", 1)]))
    results.add(_report("x", [(report.MEMORY_KEY, {"path": "x"})], when="setup"))
    assert results.memory == {} and results.lint == {}
    assert results.summary() == []


def _report(nodeid, properties, outcome="passed", when="call"):
    return pytest.TestReport(
        nodeid, ("x", None, "x"), {}, outcome, None, when, user_properties=properties
    )


def _collect_report():
    return pytest.CollectReport("tests/test_broken.py", "failed", "ImportError", [])
