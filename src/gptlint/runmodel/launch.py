"""Launch lines: how many training processes a `torchrun` command starts, read from its text.
Both front ends need it (a nanoGPT config's comments, a nanochat run script's lines)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

_NPROC = re.compile(r"--nproc[_-]per[_-]node[=\s]+(\d{1,7})\b")
_NNODES = re.compile(r"--nnodes[=\s]+(\d{1,7})\b")
_SCRIPT = re.compile(r"[\w./-]+\.py\b")


@dataclass(frozen=True)
class WorldSize:
    """How many DDP processes train, and what says so; 0 where a launch line starts none
    (`--nproc_per_node=0`), which GPT401 reports."""

    size: int
    origin: str
    node: cst.CSTNode | None = None


def mentions_launch(text: str) -> bool:
    """Whether `text` has a `--nproc_per_node` flag anywhere (a quick test before reading lines)."""
    return _NPROC.search(text) is not None


def launch_flags(line: str) -> str:
    """The `--nproc_per_node=N --nnodes=M` flags of a launch line, as written."""
    return " ".join(m.group(0).strip() for m in (_NPROC.search(line), _NNODES.search(line)) if m)


def launched_processes(line: str, config_name: str) -> int | None:
    """The processes a `torchrun --nproc_per_node=N [--nnodes=M] train.py [config]` line
    starts, if it runs this config: it names the config's file, or no config at all."""
    match = _NPROC.search(line)
    if match is None:
        return None
    scripts = [Path(name).name for name in _SCRIPT.findall(line[match.end() :])]
    if len(scripts) > 1 and config_name not in scripts[1:]:
        return None  # launches another config
    nodes = _NNODES.search(line)
    return int(match.group(1)) * (int(nodes.group(1)) if nodes else 1)
