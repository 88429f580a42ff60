"""The README's promises: its test command is what CI runs, and its sample output is real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _setup_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README)[:2]


def test_ci_runs_the_readme_test_command():
    _, test_command = _setup_commands()
    ci_script = (ROOT / ".ci" / "run").read_text()
    assert test_command.replace("python3 ", "python ") in ci_script.replace("python3 ", "python ")


def test_readme_lint_output_is_what_gptlint_prints():
    console = re.search(r"```console\n\$ gptlint examples/config/\n(.+?)\n\$", README, re.S)
    assert console is not None
    run = subprocess.run(
        [sys.executable, "-m", "gptlint", "examples/config/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout.strip() == console.group(1).strip()


def _table(text: str) -> list[str]:
    """The plugin's summary table: its header line (`config  gpu  mode ...`) and the rows up to
    the first blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("config "))
    rows = []
    for line in lines[start:]:
        if not line.strip() or line.startswith("```"):
            break
        rows.append(line.rstrip())
    return rows


@pytest.mark.slow
def test_readme_plugin_table_is_what_the_plugin_prints(tmp_path):
    """The README's `pytest --gpt-configs config/` table over examples/ is the plugin's own,
    regenerated here (the compiled plans come from the cache when it holds them)."""
    shown = re.search(
        r"```console\n\$ cd examples && pytest --gpt-configs config/ -q\n(.+?)```", README, re.S
    )
    assert shown is not None
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--gpt-configs",
            "config/",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT / "examples",
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stdout[-2000:]
    assert _table(run.stdout) == _table(shown.group(1))
