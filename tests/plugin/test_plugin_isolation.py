"""The plugin loads in every pytest run: it imports no torch, and explains a missing one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_gptcfg.items import worker_device

pytest_plugins = ["pytester"]

BLOCK_TORCH = "import sys\nsys.modules['torch'] = None  # `import torch` now raises ImportError\n"


def test_importing_the_plugin_imports_no_torch(project):
    """`project` puts the package on PYTHONPATH for the child process."""
    code = "import pytest_gptcfg.plugin, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_a_plain_pytest_run_imports_no_torch(project):
    project.pytester.makepyfile(
        test_plain="import sys\n\ndef test_no_torch():\n    assert 'torch' not in sys.modules\n"
    )
    project.run_subprocess("-q").assert_outcomes(passed=1)


def test_without_torch_gpt_configs_names_the_extra_to_install_in_one_line(project):
    project.pytester.makepyfile(blocktorch=BLOCK_TORCH)
    project.config("train_a.py")
    result = project.run_subprocess("-p", "blocktorch", "--gpt-configs", "config")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert errors == [
        "ERROR: --gpt-configs needs PyTorch for the memory check: pip install 'gptlint[torch]'"
    ]


@pytest.mark.slow
def test_without_torch_ordinary_tests_still_run(project):
    project.pytester.makepyfile(blocktorch=BLOCK_TORCH, test_plain="def test_ok():\n    pass\n")
    project.run_subprocess("-p", "blocktorch", "-q").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("worker", "devices", "expected"),
    [(None, 4, 0), ("gw0", 4, 0), ("gw5", 4, 1), ("gw3", 1, 0), ("master", 2, 0)],
)
def test_each_xdist_worker_gets_one_gpu_round_robin(worker, devices, expected):
    assert worker_device(worker, devices) == expected
