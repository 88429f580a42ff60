"""Bad input in the plugin fails its items with a plain message naming the file (and line),
never a traceback or INTERNALERROR: unusable options are usage errors; an unparsable config,
impossible values, runs too large to simulate and deeply nested files fail before any torch
work; FIFOs are named, not read; `[tool.gptlint] set` applies as on gptlint's command line.
All in-process: no run here reaches torch.

The linter's bad input is tests/linter/test_bad_input.py; a project's model that fake tensors
cannot run is test_plugin_engine_failures.py."""

from __future__ import annotations

import os
import re
from itertools import takewhile

import pytest

from gptlint.nanogpt.schema import NANOGPT_DEFAULTS

pytest_plugins = ["pytester"]


def failures(result: pytest.RunResult) -> dict[str, str]:
    """Each failed item's one-line failure text, by config file name."""
    found = {}
    for line in result.outlines:
        match = re.match(r"(config/\w+\.py): memory check not run: (.*)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpt-configs", "missing"], "*--gpt-configs: no such file or folder:*missing*"),
        (["--gpt-configs", "notes.txt"], "*--gpt-configs: not a Python config file:*notes.txt"),
        (["--gpt-configs", "config", "--gpt-gpu", "gtx1080"], "*unknown GPU profile 'gtx1080'*"),
        (["--gpt-configs", "config", "--gpt-memory-budget", "lots"], "*cannot read memory size*"),
        (["--gpt-configs", "config", "--gpt-set", "batch_size"], "*'batch_size' is not KEY=VALUE*"),
        (["--gpt-configs", "config", "--gpt-model", "nope.py"], "*--gpt-model: no such file*"),
    ],
)
def test_unusable_options_are_usage_errors(project, args, message):
    project.config("train_a.py")
    (project.path / "notes.txt").write_text("")
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_an_unparsable_config_fails_both_items_with_its_line(project):
    project.config("train_broken.py", "batch_size = (\n")
    result = project.run("-q", "--gpt-configs", "config")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*config/train_broken.py:*: GPT000 *"])
    result.stdout.fnmatch_lines(["config/train_broken.py: memory check not run: *"])
    assert "Traceback" not in result.stdout.str()


IMPOSSIBLE = {
    "dropout": ("dropout = 1.5", "dropout=1.5 (config/dropout.py:9) must be in [0, 1)"),
    "negative_lr": ("learning_rate = -1.0", "AdamW raises 'Invalid learning rate'"),
    "nan_lr": ("learning_rate = float('nan')", "learning_rate=nan (config/nan_lr.py:9): AdamW"),
    "beta1": ("beta1 = 1.0", "AdamW raises 'Invalid beta parameter at index 0'"),
    "beta2": ("beta2 = -0.5", "AdamW raises 'Invalid beta parameter at index 1'"),
    "n_embd": ("n_embd = 2**63", "n_embd=9223372036854775808 (config/n_embd.py:9) is implaus"),
    "batch": ("batch_size = 10**9", "too large to simulate: batch_size 1000000000 x block_size 32"),
    "block": ("block_size = 10**9", "too large to simulate: batch_size 4 x block_size 1000000000"),
    "layers": ("n_layer = 100000", "too large to simulate: n_layer 100000 is more than 2048"),
    "width": ("n_embd = 2**20", "too large to simulate: 26441.07B params (needs ~"),
}


def test_impossible_values_and_huge_runs_fail_plainly_before_torch(project):
    for name, (line, _) in IMPOSSIBLE.items():
        project.config(f"{name}.py", project.tiny + line + "\n")
    result = project.run("--gpt-configs", "config", "-k", "memory", "-p", "no:randomly")
    result.assert_outcomes(failed=len(IMPOSSIBLE), deselected=len(IMPOSSIBLE))
    found = failures(result)
    for name, (_, expected) in IMPOSSIBLE.items():
        assert expected in found[f"config/{name}.py"], (name, found.get(f"config/{name}.py"))
    assert (
        "GiB for parameters alone; the largest GPU profile holds 140 GiB)"
        in found["config/width.py"]
    )
    assert "GiB for its tensors at the peak" in found["config/batch.py"]
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert "))" not in "".join(found.values())


def test_a_deeply_nested_file_is_linted_and_loaded(project):
    chain = "x = " + " or ".join(["a"] * 2500) + "\n"
    project.config("deep.py", project.tiny + chain + "dropout = 1.5\n")
    result = project.run("--gpt-configs", "config", "-v")
    out = result.stdout.str()
    assert "RecursionError" not in out and "Traceback" not in out and "INTERNALERROR" not in out
    # collected as a config, linted (its dropout is an error), its run derived
    result.stdout.fnmatch_lines(["*config/deep.py:10:1: GPT* dropout*[[]error[]]"])
    assert "dropout=1.5 (config/deep.py:10) must be in [0, 1)" in failures(result)["config/deep.py"]
    result.assert_outcomes(failed=2)


def test_pyproject_set_applies_and_gpt_set_wins(project):
    project.config("train_a.py", project.tiny)
    project.pytester.makepyprojecttoml("[tool.gptlint]\nset = {n_layer = 5000}\n")
    from_set = project.run("--gpt-configs", "config", "-k", "memory")
    assert "n_layer 5000 is more than 2048" in failures(from_set)["config/train_a.py"]
    from_cli = project.run("--gpt-configs", "config", "-k", "memory", "--gpt-set", "n_layer=4000")
    assert "n_layer 4000 is more than 2048" in failures(from_cli)["config/train_a.py"]


def test_a_bad_pyproject_set_is_named(project):
    project.config("train_a.py", project.tiny)
    project.pytester.makepyprojecttoml("[tool.gptlint]\nset = {n_layer = 'twelve'}\n")
    result = project.run("--gpt-configs", "config")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    result.stdout.fnmatch_lines(["[[]tool.gptlint[]] set: *n_layer*"])


def test_a_problem_with_a_default_names_it_once_in_parentheses(project):
    project.config("train_a.py", project.tiny.replace("dtype", "#"))
    defaults = {**NANOGPT_DEFAULTS, "dtype": "fp16"}
    train = "".join(f"{key} = {value!r}\n" for key, value in defaults.items())
    (project.path / "train.py").write_text(train + "exec(open('configurator.py').read())\n")
    result = project.run("--gpt-configs", "config", "-k", "memory")
    text = failures(result)["config/train_a.py"]
    assert text.startswith(f"dtype='fp16' (default: {project.path / 'train.py'}) is not")
    assert "))" not in text


def test_the_lint_failure_lists_every_finding_under_a_matching_count(project):
    project.config(
        "train_bad.py", project.tiny + "n_head = 12\nn_embd = 512\nbatch_size = 0.5\nfoo_bar = 1\n"
    )
    result = project.run("--gpt-configs", "config", "-k", "lint")
    result.assert_outcomes(failed=1, deselected=1)
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "gptlint finding" in line)
    header = re.fullmatch(
        r"(\d+) gptlint findings \((\d+) errors?(?:, (\d+) warnings?)?(?:, (\d+) infos?)?\) "
        r"in config/train_bad\.py:",
        lines[start],
    )
    assert header, lines[start]
    listed = list(takewhile(lambda line: line.startswith("  config/"), lines[start + 1 :]))
    assert len(listed) == int(header.group(1))
    assert sum(line.endswith("[error]") for line in listed) == int(header.group(2))
    assert all(re.search(r"\[(error|warning|info)\]$", line) for line in listed)


def test_a_fifo_named_with_gpt_configs_is_a_usage_error(project):
    os.mkfifo(project.path / "pipe.py")
    result = project.run("--gpt-configs", "pipe.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gpt-configs: not a regular file or folder: */pipe.py"])


def test_a_fifo_in_a_configs_folder_is_reported_not_skipped(project):
    project.config("a.py", project.tiny)
    os.mkfifo(project.path / "config" / "pipe.py")
    result = project.run("--gpt-configs", "config", "-k", "lint", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["*config/pipe.py:1:1: GPT000 cannot read file: not a regular file (a FIFO), skipped*"]
    )
