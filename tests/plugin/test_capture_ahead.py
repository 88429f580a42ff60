"""A folder of compiled configs of several model shapes, simulated: while the first config's
graphs are captured, a fork beside the test run captures the later configs' (where a core is
spare), and each test reads them from the cache, with the figures of a capture of its own."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from pytest_gptcfg.engine import forked

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # three captures, twice

CONFIG = """\
n_layer = {n_layer}
n_head = 2
n_embd = 64
block_size = 32
batch_size = 4
dataset = 'tiny'
"""

ONE_CORE = """\
import os

os.sched_getaffinity = lambda pid: {0}
"""
"""A conftest.py that leaves the run one core: no fork."""


def notes_and_peaks(project) -> dict[str, tuple[str, tuple[int, int]]]:
    """Run the memory tests of the project's configs: each config's note on its plan, and its
    peak."""
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "-k", "memory", "--gpt-report", "report.json",
        f"--basetemp={project.path / 'tmp'}", timeout=600,
    )  # fmt: skip
    result.assert_outcomes(passed=3, deselected=3)
    records = json.loads((project.path / "report.json").read_text())["configs"]
    return {
        record["path"]: (
            next(n for n in record["notes"] if n.startswith("torch.compile simulated")),
            (record["peak_allocated_bytes"], record["peak_reserved_bytes"]),
        )
        for record in records
    }


def test_the_later_shapes_are_captured_beside_the_first(project, monkeypatch, tmp_path):
    if forked.spare_cores() < 1:
        pytest.skip("one core: nothing is captured beside the run")
    for n_layer, name in ((1, "a.py"), (2, "b.py"), (3, "c.py")):  # three model shapes
        project.config(name, CONFIG.format(n_layer=n_layer))
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path / "beside"))
    beside = notes_and_peaks(project)
    assert "planned in" in beside["config/a.py"][0]  # captured by the test itself
    assert "plan from the cache" in beside["config/c.py"][0]  # made by the fork

    (project.path / "conftest.py").write_text(ONE_CORE)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path / "alone"))
    alone = notes_and_peaks(project)
    assert all("planned in" in note for note, _ in alone.values())  # each its own capture
    assert {k: peak for k, (_, peak) in beside.items()} == {
        k: peak for k, (_, peak) in alone.items()
    }


def test_torchs_trace_records_stay_out_of_every_failing_configs_output(project, monkeypatch):
    """torch's structured-trace logger stops propagating once torch sets up its logs (in the
    first config's capture); pytest then attaches its log capture to it directly at the next
    test, which would show its DEBUG records (hundreds per graph) under a failing config."""
    for n_layer, name in ((1, "a.py"), (2, "b.py")):
        project.config(name, CONFIG.format(n_layer=n_layer))
    (project.path / "conftest.py").write_text(ONE_CORE)  # both captured in the test run
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "-k", "memory", "--gpt-memory-budget", "100MB",
        f"--basetemp={project.path / 'tmp'}", timeout=600,
    )  # fmt: skip
    result.assert_outcomes(failed=2, deselected=2)
    assert "does not fit" in result.stdout.str()
    assert "torch.__trace" not in result.stdout.str()
