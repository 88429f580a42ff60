"""Realistic configs of the kinds nanoGPT users and forks write (tests/data/real_configs):
nanoGPT's own, hobby runs on a 12 GB card, a Colab T4, a fork with its own train.py and keys,
helper modules that are not configs, and files with planted mistakes.

Every diagnostic gptlint prints over them must be marked on its line with
`# planted: CODE`, and every marked mistake must be found: no false positives, no misses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gptlint.command.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "data" / "real_configs"
GROUPS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
_MARK = re.compile(r"planted: ((?:GPT\d{3}\s*)+)")


def _planted(folder: Path) -> set[tuple[str, int, str]]:
    marks = set()
    for path in folder.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = _MARK.search(line)
            if match:
                marks |= {(path.name, number, code) for code in match.group(1).split()}
    return marks


def _lint(capsys, folder: Path) -> list[dict]:
    main([str(folder / "config"), "--output-format", "json", "--exit-zero"])
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


def test_corpus_is_large_and_varied():
    files = list(CORPUS.rglob("*.py"))
    assert len(files) >= 40
    text = "\n".join(p.read_text() for p in files)
    for feature in (
        "import time",
        "f'",
        "if ",
        "exec(",
        "from base import *",
        "GPTConfig(",
        "def ",
    ):
        assert feature in text


@pytest.mark.parametrize("group", GROUPS)
def test_exactly_the_planted_mistakes_are_reported(capsys, group):
    folder = CORPUS / group
    found = {
        (Path(d["filename"]).name, d["location"]["row"], d["code"]) for d in _lint(capsys, folder)
    }
    assert found == _planted(folder)


def test_every_planted_error_is_an_error(capsys):
    diagnostics = _lint(capsys, CORPUS / "planted")
    errors = {d["code"] for d in diagnostics if d["severity"] == "error"}
    assert {"GPT101", "GPT104", "GPT106", "GPT201", "GPT302", "GPT303", "GPT304"} <= errors
    assert {"GPT401", "GPT501"} <= errors


def test_the_fork_keys_are_known_from_its_train_py(capsys):
    assert _lint(capsys, CORPUS / "fork") == []
    text = (CORPUS / "fork" / "config" / "gqa_small.py").read_text()
    assert "n_kv_head" in text and "use_rotary" in text
