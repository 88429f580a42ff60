"""A folder of compiled configs of several model shapes, simulated: while the first config is
checked (its graphs captured), a fork beside the test run checks the later configs (their
graphs captured there, where a core is spare), and each test takes the check the fork made,
with the figures of a check of its own."""

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

MAKER_NOTED = """\
import os

from pytest_gptcfg.engine import check

RUN = os.getpid()
_check_memory = check.check_memory


def check_memory(*args, **kwargs):
    result = _check_memory(*args, **kwargs)
    result.notes.append("checked by the run" if os.getpid() == RUN else "checked by a fork")
    return result


check.check_memory = check_memory
"""
"""A conftest.py that notes which process made each check."""


def notes_and_peaks(project) -> dict[str, tuple[list[str], tuple[int, int]]]:
    """Run the memory tests of the project's configs: each config's notes, and its peak."""
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "-k", "memory", "--gpt-report", "report.json",
        f"--basetemp={project.path / 'tmp'}", timeout=600,
    )  # fmt: skip
    result.assert_outcomes(passed=3, deselected=3)
    records = json.loads((project.path / "report.json").read_text())["configs"]
    return {
        record["path"]: (
            record["notes"],
            (record["peak_allocated_bytes"], record["peak_reserved_bytes"]),
        )
        for record in records
    }


def test_the_later_configs_are_checked_beside_the_first(project, monkeypatch, tmp_path):
    if forked.spare_cores() < 1:
        pytest.skip("one core: nothing is checked beside the run")
    for n_layer, name in ((1, "a.py"), (2, "b.py"), (3, "c.py")):  # three model shapes
        project.config(name, CONFIG.format(n_layer=n_layer))
    (project.path / "conftest.py").write_text(MAKER_NOTED)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path / "beside"))
    beside = notes_and_peaks(project)
    assert "checked by the run" in beside["config/a.py"][0]
    assert any("planned in" in note for note in beside["config/a.py"][0])  # captured there
    assert "checked by a fork" in beside["config/c.py"][0]  # the last: the fork's first
    assert any("planned in" in note for note in beside["config/c.py"][0])  # captured there

    (project.path / "conftest.py").write_text(MAKER_NOTED + ONE_CORE)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path / "alone"))
    alone = notes_and_peaks(project)
    assert all("checked by the run" in notes for notes, _ in alone.values())
    assert {k: peak for k, (_, peak) in beside.items()} == {
        k: peak for k, (_, peak) in alone.items()
    }
    assert {k: len(notes) for k, (notes, _) in beside.items()} == {
        k: len(notes) for k, (notes, _) in alone.items()
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


SOURCES_NOTED = """\
from pytest_gptcfg.engine import compiledstep, forked

forked.spare_cores = lambda: 1  # a core idle, whatever the machine
_plan_for = compiledstep.plan_for


def plan_for(*args, **kwargs):
    plan, source = _plan_for(*args, **kwargs)
    with open("sources.txt", "a") as noted:
        noted.write(source + "\\n")
    return plan, source


compiledstep.plan_for = plan_for
"""
"""A conftest.py that leaves a core idle and notes where each compiled plan came from."""


@pytest.mark.parametrize("report", [False, True])
def test_a_lone_config_captures_its_batch_alone_unless_the_report_searches_its_batches(
    project, monkeypatch, tmp_path, report
):
    """One config that fits, on a cold cache: its batch is captured alone (the graphs of
    every batch beside it: only later batches need those); the report asks for the largest
    batch that fits, which the graphs of every batch serve: they are captured first."""
    if not forked.autograd_forks():
        pytest.skip("no fork here that can run a backward: nothing is captured beside")
    project.config("a.py", CONFIG.format(n_layer=1))
    (project.path / "conftest.py").write_text(SOURCES_NOTED)
    monkeypatch.setenv("GPTCFG_CACHE_DIR", str(tmp_path / "plans"))
    args = ["--gpt-report", "report.json"] if report else []
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "-k", "memory", *args, timeout=600
    )
    result.assert_outcomes(passed=1, deselected=1)
    sources = (project.path / "sources.txt").read_text().split()
    if report:
        assert sources[0] == "captured" and set(sources[1:]) == {"graphs"}
    else:
        assert sources == ["alone"]
