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
