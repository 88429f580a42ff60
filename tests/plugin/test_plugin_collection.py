"""Which configs become test items, and how the options are read (no memory check runs here)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(" ")]


def test_a_folder_gives_lint_and_memory_items_per_config(project):
    project.config("train_a.py")
    project.config("train_b.py")
    result = project.run("--collect-only", "-q", "--gpt-configs", "config")
    assert collected(result) == [
        "config/train_a.py::lint",
        "config/train_a.py::memory[rtx4070]",
        "config/train_b.py::lint",
        "config/train_b.py::memory[rtx4070]",
    ]
    assert result.ret == 0


def test_named_files_only_and_no_testpaths_without_positional_paths(project):
    project.pytester.makeini("[pytest]\ntestpaths = tests\n")
    project.pytester.mkdir("tests")
    (project.path / "tests" / "test_ordinary.py").write_text("def test_ok():\n    pass\n")
    project.config("train_a.py")
    project.config("train_b.py")
    result = project.run("--collect-only", "-q", "--gpt-configs", "config/train_a.py")
    assert collected(result) == ["config/train_a.py::lint", "config/train_a.py::memory[rtx4070]"]
    result = project.run("--collect-only", "-q", "--gpt-configs", "config/train_a.py", "tests")
    assert collected(result) == [
        "tests/test_ordinary.py::test_ok",
        "config/train_a.py::lint",
        "config/train_a.py::memory[rtx4070]",
    ]


def test_a_folder_of_configs_and_tests_gives_the_configs_alone_without_positional_paths(project):
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_ordinary.py").write_text("def test_ok():\n    pass\n")
    (project.path / "data").mkdir()
    (project.path / "data" / "prepare.py").write_text("with open('x') as f:\n    data = 1\n")
    project.config("train_a.py")
    result = project.run("--collect-only", "-q", "--gpt-configs", ".")
    assert collected(result) == ["config/train_a.py::lint", "config/train_a.py::memory[rtx4070]"]
    result = project.run("--collect-only", "-q", "--gpt-configs", ".", "tests")
    assert "tests/test_ordinary.py::test_ok" in collected(result)


def test_a_config_named_twice_is_collected_once(project):
    project.config("train_a.py")
    result = project.run("--collect-only", "-q", "config", "--gpt-configs", "config/train_a.py")
    assert collected(result) == ["config/train_a.py::lint", "config/train_a.py::memory[rtx4070]"]


def test_configs_are_never_imported_even_when_named_like_tests(project):
    project.config("test_exits.py", "raise SystemExit('imported!')\nbatch_size = 4\n")
    project.config("train_imports.py", "import nonexistent_module\nbatch_size = 4\n")
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint")
    result.assert_outcomes(passed=2, deselected=2)
    assert "imported!" not in result.stdout.str()
    assert "nonexistent_module" not in result.stdout.str()


def test_ini_twins_select_configs_and_gpu(project):
    project.pytester.makeini("[pytest]\ngpt_configs = config\ngpt_gpu = rtx3090\n")
    project.config("train_a.py")
    result = project.run("--collect-only", "-q")
    assert collected(result) == ["config/train_a.py::lint", "config/train_a.py::memory[rtx3090]"]


def test_ini_overrides_and_report_path(project):
    project.pytester.makeini(
        "[pytest]\ngpt_configs = config\ngpt_set =\n    batch_size=2.5\ngpt_report = out/r.json\n"
    )
    project.config("train_a.py")
    result = project.run("-q", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["--gpt-set: override batch_size=2.5: type float does not match*"])
    (record,) = json.loads((project.path / "out" / "r.json").read_text())["configs"]
    assert record["path"] == "config/train_a.py"
    assert record["error"].startswith("--gpt-set: override batch_size=2.5")
    assert record["fits"] is None


def test_command_line_wins_over_ini(project):
    project.pytester.makeini("[pytest]\ngpt_gpu = rtx3090\n")
    project.config("train_a.py")
    result = project.run("--collect-only", "-q", "--gpt-gpu", "T4", "--gpt-configs", "config")
    assert "config/train_a.py::memory[t4]" in collected(result)


def test_the_session_header_says_what_is_checked(project):
    project.config("train_a.py")
    result = project.run(
        "--collect-only",
        "--gpt-configs",
        "config",
        "--gpt-gpu",
        "t4",
        "--gpt-memory-budget",
        "10GB",
        "--gpt-mode",
        "simulate",
    )
    result.stdout.fnmatch_lines(["gptcfg: gpu t4, budget 10.00 GiB, mode simulate, compile auto"])


def test_gpu_from_tool_gptlint_settings(project):
    project.pytester.makepyprojecttoml('[tool.gptlint]\ngpu = "rtx4090"\n')
    project.config("train_a.py")
    result = project.run("--collect-only", "-q", "--gpt-configs", "config")
    assert "config/train_a.py::memory[rtx4090]" in collected(result)


def test_options_are_listed_in_a_gptcfg_group(project):
    result = project.run("--help")
    result.stdout.fnmatch_lines(["*nanoGPT config checks (pytest-gptcfg)*"])
    for option in (
        "--gpt-configs",
        "--gpt-gpu",
        "--gpt-memory-budget",
        "--gpt-mode",
        "--gpt-compile",
        "--gpt-model",
        "--gpt-set",
        "--gpt-report",
    ):
        assert option in result.stdout.str()
    for ini in (
        "gpt_configs",
        "gpt_gpu",
        "gpt_memory_budget",
        "gpt_mode",
        "gpt_compile",
        "gpt_model",
        "gpt_set",
        "gpt_report",
    ):
        assert f"{ini} (" in result.stdout.str()


def test_without_configs_the_plugin_stays_out_of_the_way(project):
    project.pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    project.config("train_a.py")
    result = project.run("-q")
    result.assert_outcomes(passed=1)
    assert "gptcfg" not in result.stdout.str()


def test_lint_errors_fail_with_the_diagnostics_and_no_traceback(project):
    project.config("train_bad.py", "n_layer = 12\nn_head = 12\nn_embd = 512\n")
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*1 gptlint finding (1 error) in config/train_bad.py:",
            "*config/train_bad.py:3:1: GPT101 n_embd=512 is not divisible by n_head=12*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()


def test_lint_warnings_pass_and_are_listed_in_the_summary(project):
    project.config("train_warn.py", "n_layer = 2\nn_head = 12\nn_embd = 144\n")
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*gptlint diagnostics:*", "*config/train_warn.py:*GPT102*"])


BIG_BATCH = "n_layer = 12\nn_head = 8\nn_embd = 512\nbatch_size = 16\ncompile = False\n"


def test_the_lint_item_judges_memory_against_the_plugins_gpu(project):
    project.config("train_big.py", BIG_BATCH)
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*GPT501 estimated peak training memory * exceeds the 11.99 GiB budget of rtx4070*",
            "  fix with: gptlint --fix --unsafe-fixes config/train_big.py",
        ]
    )
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint", "--gpt-gpu", "a100-80gb")
    result.assert_outcomes(passed=1, deselected=1)
