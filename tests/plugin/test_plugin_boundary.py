"""The torch boundary: loading the plugin, configuring it and collecting configs import neither
torch nor any module of `pytest_gptcfg.engine` (only `MemoryItem.runtest` does)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest_gptcfg

SRC = Path(pytest_gptcfg.__file__).resolve().parents[1]
TINY = "n_layer = 2\nn_head = 2\nn_embd = 64\nblock_size = 32\nbatch_size = 4\n"

CHECK = """
import sys
engine = sorted(m for m in sys.modules if m == "pytest_gptcfg.engine"
                or m.startswith("pytest_gptcfg.engine."))
torch = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not engine and not torch, (engine, torch[:5])
"""


def _python(code: str, cwd) -> subprocess.CompletedProcess[str]:
    # the plugin is loaded with -p, as without its entry point; no other plugin is
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_importing_the_plugin_loads_no_engine_and_no_torch(tmp_path):
    done = _python("import pytest_gptcfg.plugin, pytest_gptcfg.items\n" + CHECK, tmp_path)
    assert done.returncode == 0, done.stderr


def test_collecting_configs_loads_no_engine_and_no_torch(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "tiny.py").write_text(TINY, encoding="utf-8")
    code = textwrap.dedent(
        """
        import pytest

        class Check:
            def pytest_collection_finish(self, session):
                assert [item.name for item in session.items] == ["lint", "memory[rtx4070]"]
                CHECK_HERE

        code = pytest.main(
            ["-p", "pytest_gptcfg.plugin", "-p", "no:cacheprovider", "--collect-only", "-q",
             "--gpt-configs", "config/"],
            plugins=[Check()],
        )
        CHECK_HERE
        raise SystemExit(code)
        """
    ).replace("CHECK_HERE", "exec(CHECK)")
    done = _python(f"CHECK = {CHECK!r}\n" + code, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "config/tiny.py::lint" in done.stdout or "<GptConfigFile" in done.stdout
