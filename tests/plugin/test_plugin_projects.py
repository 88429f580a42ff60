"""The plugin in real projects: broken test modules, positional paths, code beside configs."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

VALIDATOR = """\
def check(config):
    return config["batch_size"] > 0


def describe(config):
    return f"{config['n_layer']} layers"
"""


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(" ")]


def test_a_test_module_that_fails_to_import_is_reported_as_usual(project):
    project.config("train_a.py")
    project.pytester.mkdir("tests")
    (project.path / "tests" / "test_broken.py").write_text("raise ImportError('no such thing')\n")
    result = project.run("-v", "--gpt-configs", "config", "tests", "-k", "lint or broken")
    output = result.stdout.str()
    assert "AttributeError" not in output and "INTERNALERROR" not in output
    result.stdout.fnmatch_lines(["*ERROR collecting tests/test_broken.py*", "*no such thing*"])
    result.assert_outcomes(errors=1)  # collection errors stop the session before running tests
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_collection_errors_with_continue_on_collection_errors_still_run_the_configs(project):
    project.config("train_a.py")
    project.pytester.mkdir("tests")
    (project.path / "tests" / "test_broken.py").write_text("raise ImportError('no such thing')\n")
    result = project.run(
        "-v", "--continue-on-collection-errors", "--gpt-configs", "config", "tests", "-k", "lint"
    )
    assert "AttributeError" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*config/train_a.py::lint PASSED*"])
    result.assert_outcomes(passed=1, errors=1, deselected=1)


def test_a_positional_folder_after_gpt_configs_runs_the_users_tests(project):
    project.config("train_a.py")
    project.pytester.mkdir("tests")
    (project.path / "tests" / "test_ordinary.py").write_text("def test_ok():\n    pass\n")
    result = project.run("--collect-only", "-q", "--gpt-configs", "config/", "tests/")
    assert sorted(collected(result)) == [
        "config/train_a.py::lint",
        "config/train_a.py::memory[rtx4070]",
        "tests/test_ordinary.py::test_ok",
    ]


def test_gpt_configs_is_repeatable(project):
    project.config("train_a.py")
    project.config("train_b.py", folder="other")
    project.config("train_c.py", folder="unused")
    result = project.run(
        "--collect-only", "-q", "--gpt-configs", "config", "--gpt-configs", "other/train_b.py"
    )
    assert sorted(collected(result)) == [
        "config/train_a.py::lint",
        "config/train_a.py::memory[rtx4070]",
        "other/train_b.py::lint",
        "other/train_b.py::memory[rtx4070]",
    ]


def test_code_in_a_config_folder_is_not_a_config_unless_named(project):
    project.config("train_a.py")
    project.config("validator.py", VALIDATOR)
    result = project.run("--collect-only", "-q", "--gpt-configs", "config")
    assert collected(result) == ["config/train_a.py::lint", "config/train_a.py::memory[rtx4070]"]
    named = project.run("--collect-only", "-q", "--gpt-configs", "config/validator.py")
    assert collected(named) == [
        "config/validator.py::lint",
        "config/validator.py::memory[rtx4070]",
    ]


def test_the_plugin_collects_what_gptlint_lints(project):
    project.config("train_a.py")
    project.config("validator.py", VALIDATOR)
    project.config("train_old.py", folder="config/old")
    project.pytester.makepyprojecttoml('[tool.gptlint]\nexclude = ["config/old/*"]\n')
    result = project.run("--collect-only", "-q", "--gpt-configs", "config")
    assert collected(result) == ["config/train_a.py::lint", "config/train_a.py::memory[rtx4070]"]
