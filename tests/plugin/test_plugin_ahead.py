"""The later configs' checks made by the fork beside the run, as a user sees them: what a
project's model prints while a check builds it is shown under that config's test, whichever
process made the check; a warning it raises is reported for that config's test."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from pytest_gptcfg.engine import forked

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # a test run in a fresh process

DATA = Path(__file__).parent / "data"

CONFIG = """\
n_layer = {n_layer}
n_head = 2
n_embd = 32
block_size = 16
batch_size = 2
compile = False
dataset = 'tiny'
"""

RUN_PID = """\
import os


def pytest_configure(config):
    with open("run.pid", "w") as file:
        file.write(str(os.getpid()))
"""
"""A conftest.py that writes the test run's pid."""


@pytest.fixture
def three_configs(project, monkeypatch):
    if forked.spare_cores() < 1:
        pytest.skip("one core: nothing is checked beside the run")
    shutil.copy(DATA / "model.py", project.path / "model.py")
    monkeypatch.setenv("MODEL_PRINTS", "1")
    (project.path / "conftest.py").write_text(RUN_PID)
    for n_layer, name in ((1, "a.py"), (2, "b.py"), (3, "c.py")):
        project.config(name, CONFIG.format(n_layer=n_layer))
    return project


def run(project) -> tuple[str, str]:
    """The memory tests of the three configs, each failing a 1 MB budget (so that pytest shows
    what each printed): pytest's output, and the test run's pid."""
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "-k", "memory", "--gpt-model", "model.py",
        "--gpt-memory-budget", "1MB", f"--basetemp={project.path / 'tmp'}", "-rw",
    )  # fmt: skip
    result.assert_outcomes(failed=3, deselected=3)
    return result.stdout.str(), (project.path / "run.pid").read_text()


def printed_under_each_test(output: str) -> dict[str, list[tuple[str, str]]]:
    """Each failing config's `built N layers in PID` lines, from its captured output."""
    sections = re.split(r"_{3,} config/(\w+)\.py: memory\[\w+\] _{3,}", output)
    return {
        name: re.findall(r"^built (\d+) layers in (\d+)$", text, flags=re.MULTILINE)
        for name, text in zip(sections[1::2], sections[2::2], strict=True)
    }


def test_what_a_check_printed_is_shown_under_its_own_config(three_configs):
    output, run_pid = run(three_configs)
    printed = printed_under_each_test(output)
    assert sorted(printed) == ["a", "b", "c"]
    for name, layers in (("a", "1"), ("b", "2"), ("c", "3")):
        assert printed[name], name  # every check builds the model
        assert {n for n, _ in printed[name]} == {layers}
    assert {pid for _, pid in printed["a"]} == {run_pid}  # the first: the run's own
    assert run_pid not in {pid for _, pid in printed["c"]}  # the last: the fork's first


def test_a_check_that_warned_in_the_fork_is_the_runs_and_its_warning_its_configs(
    three_configs, monkeypatch
):
    monkeypatch.setenv("MODEL_WARNS", "1")
    output, run_pid = run(three_configs)
    printed = printed_under_each_test(output)
    assert {pid for name in "abc" for _, pid in printed[name]} == {run_pid}  # made again here
    summary = output[output.index("warnings summary") :]
    for name, layers in (("a", 1), ("b", 2), ("c", 3)):
        test = summary.index(f"config/{name}.py::memory")
        assert f"UserWarning: a model of {layers} layers" in summary[test:].split("\n\n")[0]


NO_FOLDER = """
import tempfile

_mkdtemp = tempfile.mkdtemp


def mkdtemp(*args, prefix=None, **kwargs):
    if prefix == "gptcfg-ahead-":
        raise PermissionError("no temporary folder here")
    return _mkdtemp(*args, prefix=prefix, **kwargs)


tempfile.mkdtemp = mkdtemp
"""
"""A conftest.py under which the plugin gets no folder for its claims."""


def test_without_a_folder_for_the_claims_the_run_checks_every_config(three_configs):
    (three_configs.path / "conftest.py").write_text(RUN_PID + NO_FOLDER)
    output, run_pid = run(three_configs)
    printed = printed_under_each_test(output)
    assert all(printed[name] for name in "abc")  # every config checked
    assert {pid for name in "abc" for _, pid in printed[name]} == {run_pid}
    assert "PermissionError" not in output
