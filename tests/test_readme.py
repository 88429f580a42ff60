"""The README's promises: its test command is what CI runs, and its sample output is real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
