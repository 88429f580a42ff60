"""The plugin on fork-like projects: a training script that is not nanoGPT-style."""

from __future__ import annotations

pytest_plugins = ["pytester"]

LIGHTNING_TRAIN_PY = """\
import pytorch_lightning as pl


def main():
    pl.Trainer().fit()


if __name__ == '__main__':
    main()
"""


def test_configs_of_a_project_that_is_not_nanogpt_style_are_skipped_with_the_reason(project):
    (project.path / "train.py").write_text(LIGHTNING_TRAIN_PY)
    project.config("a.py", "n_embed = 576\nn_head = 5\n")
    result = project.run("-rs", "--gpt-configs", "config")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*train.py does not run configurator.py*not nanoGPT-style*"])
    assert "memory check not run" not in result.stdout.str()


def _collected(result) -> list[str]:
    return sorted(line for line in result.outlines if "::" in line and not line.startswith(" "))


def test_without_positional_paths_only_the_configs_are_collected(project):
    project.config("a.py")
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_broken.py").write_text("raise ImportError('no torch_geo')\n")
    (project.path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    result = project.run("--collect-only", "-q", "--gpt-configs", "config")
    assert _collected(result) == ["config/a.py::lint", "config/a.py::memory[rtx4070]"]
    assert result.ret == 0
    both = project.run("--collect-only", "-q", "--gpt-configs", "config", "tests")
    assert "no torch_geo" in both.stdout.str()  # named: the project's tests are collected too


def test_a_positional_config_after_gpt_configs_is_checked_as_one(project):
    project.config("a.py")
    project.config("b.py")
    result = project.run("--collect-only", "-q", "--gpt-configs", "config/a.py", "config/b.py")
    assert _collected(result) == [
        "config/a.py::lint",
        "config/a.py::memory[rtx4070]",
        "config/b.py::lint",
        "config/b.py::memory[rtx4070]",
    ]


def test_no_config_found_is_said(project):
    (project.path / "config").mkdir()
    (project.path / "config" / "model.py").write_text("def f():\n    return 1\n")
    result = project.run("--gpt-configs", "config")
    result.stdout.fnmatch_lines(["gptcfg: config: no config files found"])
    assert result.ret == 5


def test_gpt_world_size_overrides_a_launch_comment(project):
    tiny = project.tiny.replace(
        "gradient_accumulation_steps = 2", "gradient_accumulation_steps = 3"
    )
    project.config("a.py", "# torchrun --nproc_per_node=8 train.py\n" + tiny)
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint")
    result.stdout.fnmatch_lines(["*GPT401*world size 8*"])
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint", "--gpt-world-size", "1")
    result.assert_outcomes(passed=1, deselected=1)
    (project.path / "pytest.ini").write_text("[pytest]\ngpt_world_size = 3\n")
    result = project.run("-q", "--gpt-configs", "config", "-k", "lint")
    result.assert_outcomes(passed=1, deselected=1)


def test_every_unknown_value_is_asked_for_at_once(project):
    project.config(
        "a.py", "import os\nbatch_size = int(os.environ['B'])\nn_layer = int(os.environ['L'])\n"
    )
    result = project.run("-q", "--gpt-configs", "config", "-k", "memory")
    result.stdout.fnmatch_lines(
        ["*give their values with --gpt-set n_layer=VALUE --gpt-set batch_size=VALUE*"]
    )


def test_a_program_kept_among_the_configs_is_not_collected(project):
    train = "batch_size = 12\nexec(open('configurator.py').read())\n"
    (project.path / "train.py").write_text(train)
    (project.path / "configurator.py").write_text("# nanoGPT's configurator\n")
    (project.path / "loop.py").write_text("def train(batch_size):\n    pass\n")
    project.config("a.py", "batch_size = 4\n")
    project.config("prog.py", "from loop import train\nbatch_size = 4\ntrain(batch_size)\n")
    result = project.run("--collect-only", "-q", "--gpt-configs", "config")
    assert _collected(result) == ["config/a.py::lint", "config/a.py::memory[rtx4070]"]
    assert result.ret == 0
