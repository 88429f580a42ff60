"""A run that compiles, whose compiled plan cannot be read (a torch whose Inductor writes
what this reader does not know): the verdict is gptlint's estimate of the compiled step,
labelled as such in the failure text, the table and the JSON report, never the eager step's
simulation."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from gptlint.facts.units import GIB

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # each test is a pytest run that imports torch and plans

COMPILED = """\
n_layer = 1
n_head = 2
n_embd = 64
block_size = 64
batch_size = 8
gradient_accumulation_steps = 2
dataset = 'tiny'
compile = True
"""


UNREADABLE = """
import torch

from pytest_gptcfg.engine import compiled

torch.__version__ = "2.99.0"  # a release newer than any this reader was checked on


def run_call(*args, **kwargs):
    raise compiled.WrapperUnreadable("a wrapper this reader does not know")


compiled.run_call = run_call
"""
"""A conftest.py that pretends a torch release not yet out, whose wrappers are unreadable (the
runs are subprocesses: a pytest run in this process would import Inductor's modules anew, which
registers its ops twice)."""


@pytest.fixture(autouse=True)
def _plans(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path / "plans"))


def test_an_unreadable_plan_gives_the_labelled_estimate_everywhere(project):
    project.config("tiny.py", COMPILED)
    (project.path / "conftest.py").write_text(UNREADABLE)
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "-k", "memory", "--gpt-memory-budget", "10MB",
        "--gpt-report", "report.json",
    )  # fmt: skip
    result.assert_outcomes(failed=1, deselected=1)
    out = result.stdout.str()
    assert "compiled step estimated by gptlint's analytical model, no step run" in out
    assert "note: torch.compile not simulated: Inductor's wrapper code could not be run: " in out
    assert "a wrapper this reader does not know" in out
    assert "torch 2.99.0 is outside the releases the compiled simulation was checked on" in out
    assert "estimated (compiled)" in out  # the table's mode column
    assert "batch_size 1 does not fit either: shrink the model or block_size (estimated)" in out
    assert "simulated (eager)" not in out and "eager step" not in out
    record = json.loads((project.path / "report.json").read_text())["configs"][0]
    assert record["mode"] == "estimated"
    assert record["step"] == "compiled" and record["compiled_step"] is True
    assert record["upper_bound"] is False
    assert any("a wrapper this reader does not know" in note for note in record["notes"])
    assert any(note.startswith("estimated (no step run)") for note in record["notes"])
    assert 0 < record["peak_allocated_bytes"] < GIB


def test_every_note_of_a_row_is_in_the_json_report(project):
    project.config("tiny.py")  # eager: the step simulated, and more than a 10 MB cap
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "-k", "memory", "--gpt-memory-budget", "10MB",
        "--gpt-report", "report.json",
    )  # fmt: skip
    result.assert_outcomes(failed=1, deselected=1)
    record = json.loads((project.path / "report.json").read_text())["configs"][0]
    assert (record["mode"], record["step"], record["upper_bound"]) == ("simulated", "eager", False)
    failure = "\n".join(result.outlines).split("short test summary info")[0]  # (CI: whole)
    shown = [line.split("note: ", 1)[1] for line in failure.splitlines() if "  note: " in line]
    assert shown and record["notes"] == shown
