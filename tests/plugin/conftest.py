"""Fixtures for the plugin's tests: a throwaway nanoGPT project run through pytester.

`pytester` itself is enabled by `pytest_plugins = ["pytester"]` in each test module (pytest
accepts `pytest_plugins` only in the rootdir's conftest).
"""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

import pytest_gptcfg.plugin

SRC = Path(pytest_gptcfg.plugin.__file__).resolve().parents[1]


def _entry_point_installed() -> bool:
    return any(ep.name == "gptcfg" for ep in importlib.metadata.entry_points(group="pytest11"))


PLUGIN_ARGS: tuple[str, ...] = () if _entry_point_installed() else ("-p", "pytest_gptcfg.plugin")

TINY = """\
n_layer = 2
n_head = 2
n_embd = 64
block_size = 32
batch_size = 4
gradient_accumulation_steps = 2
dataset = 'tiny'
compile = False
"""


class Project:
    """A project folder with `config/*.py`, run with the plugin loaded."""

    tiny = TINY
    """The default config: a model small enough to simulate in a second."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path

    def config(self, name: str, text: str = TINY, folder: str = "config") -> Path:
        path = self.path / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def run(self, *args: str) -> pytest.RunResult:
        """pytest in this process (fast); torch must already be imported by the caller."""
        return self.pytester.runpytest(*PLUGIN_ARGS, *args)

    def run_subprocess(self, *args: str, timeout: float = 240) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*PLUGIN_ARGS, *args, timeout=timeout)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return Project(pytester)
