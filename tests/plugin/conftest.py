"""Fixtures for the plugin's tests: a throwaway nanoGPT project run through pytester, and
inner pytest runs that several tests share (`shared_run`).

`pytester` itself is enabled by `pytest_plugins = ["pytester"]` in each test module (pytest
accepts `pytest_plugins` only in the rootdir's conftest).
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
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


class ProjectFolder:
    """A nanoGPT project's folder, with `config/*.py` written into it."""

    tiny = TINY
    """The default config: a model small enough to simulate in a second."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def config(self, name: str, text: str = TINY, folder: str = "config") -> Path:
        path = self.path / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path


class Project(ProjectFolder):
    """A project folder run with the plugin loaded, through pytester."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        super().__init__(pytester.path)
        self.pytester = pytester

    def run(self, *args: str) -> pytest.RunResult:
        """pytest in this process (fast); torch must already be imported by the caller."""
        return self.pytester.runpytest(*PLUGIN_ARGS, *args)

    def run_subprocess(self, *args: str, timeout: float = 240) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*PLUGIN_ARGS, *args, timeout=timeout)


@pytest.fixture(autouse=True)
def _no_capture_beside(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone compiled check on a cold cache captures its batch alone, with the graphs of every
    batch captured beside it, only where a core is idle: the machine's, not the test's. Off in
    this process for every test (the tests of it turn it on, with a core made idle)."""
    if importlib.util.find_spec("torch") is None:
        return
    from pytest_gptcfg.engine import compiledstep

    monkeypatch.setattr(compiledstep, "CAPTURE_BESIDE", False)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return Project(pytester)


def run_pytest(folder: Path, *args: str, timeout: float = 240) -> pytest.RunResult:
    """`pytest ARGS` with the plugin in a child process in `folder`, as `project.run_subprocess`
    runs it through pytester: PYTHONPATH the folder and the plugin's source, HOME the folder
    (so are the plugin's caches), no PYTEST_ADDOPTS, stdin closed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(SRC)])}
    env.update(HOME=str(folder), USERPROFILE=str(folder))
    for name in ("PYTEST_ADDOPTS", "TOX_ENV_DIR"):
        env.pop(name, None)
    basetemp = f"--basetemp={folder / 'runpytest-0'}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-mpytest", basetemp, *PLUGIN_ARGS, *args],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        timeout=timeout,
    )
    duration = time.monotonic() - started
    return pytest.RunResult(
        done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), duration
    )


@dataclass(frozen=True)
class SharedRun:
    """One inner pytest run that several tests read: the project folder it ran in (its report
    and snapshots; tests only read it) and its result."""

    path: Path
    result: pytest.RunResult


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., SharedRun]:
    """`shared_run(name, write, *args)`: `pytest ARGS` over a project that `write` fills, run
    once per test session however many tests read it. Under pytest-xdist the first worker to
    ask runs it while the others wait (a lock file in the folder the workers share), and all
    read its output, saved beside it. For a module-scoped fixture of the tests that assert
    different things about one scenario."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own

    def run(name: str, write: Callable[[ProjectFolder], object], *args: str) -> SharedRun:
        folder, saved = root / f"shared-{name}", root / f"shared-{name}.json"
        with open(root / f"shared-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not saved.exists():
                folder.mkdir()
                write(ProjectFolder(folder))
                result = run_pytest(folder, *args)
                output = [int(result.ret), result.outlines, result.errlines, result.duration]
                saved.write_text(json.dumps(output), encoding="utf-8")
            ret, outlines, errlines, duration = json.loads(saved.read_text(encoding="utf-8"))
        return SharedRun(folder, pytest.RunResult(ret, outlines, errlines, duration))

    return run


HEAD_MODEL = """\
import torch
from torch import nn
from torch.nn import functional as F
{preamble}

class GPTConfig:
    def __init__(self, n_layer=1, n_head=2, n_embd=64, block_size={block_size}, vocab_size=8192,
                 bias=False, dropout=0.0):
        self.n_embd, self.vocab_size = n_embd, vocab_size


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, idx, targets=None):
{forward}
"""


@pytest.fixture
def head_model(tmp_path: Path) -> Callable[..., Path]:
    """Writes a project's model.py of nanoGPT's interface (an embedding and a head) whose
    forward is the given body, and returns its path."""

    def write(forward: str, preamble: str = "", block_size: int = 64) -> Path:
        body = textwrap.indent(textwrap.dedent(forward).strip("\n"), " " * 8)
        text = HEAD_MODEL.format(preamble=preamble, block_size=block_size, forward=body)
        path = tmp_path / "model.py"
        path.write_text(text, encoding="utf-8")
        return path

    return write
