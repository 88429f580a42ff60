"""Memory claims in comments (GPT504) are checked against GPT501's estimate, and fixing the
seed config leaves no comment that contradicts its new values."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptlint.command.cli import main
from gptlint.lint.rules.memory import memory_claims

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "config" / "train_fineweb_4070.py"


@pytest.mark.parametrize(
    ("comment", "claims"),
    [
        ("batch 16 x block 1024 should fit easily in ~10.5 GB", [("10.5", True)]),
        ("this uses about 9 GB of memory", [("9", False)]),
        ("peaks at 11.2GiB", [("11.2", False)]),
        ("Train on one 12 GB RTX 4070", []),
        ("fits on a 24GB card", []),
        ("fits in a 16 GB GPU", []),
        ("the dataset needs 40 GB of disk", [("40", False)]),
    ],
)
def test_what_counts_as_a_claim_about_the_run(comment, claims):
    found = [(m.group("number"), bound) for m, bound in memory_claims(comment)]
    assert found == claims


def test_fixing_the_seed_config_leaves_no_contradicting_comment(tmp_path, capsys):
    path = tmp_path / "config" / EXAMPLE.name
    path.parent.mkdir()
    shutil.copy(EXAMPLE, path)
    main(["--fix", str(path)])  # n_head 12 -> 8: now the run can be estimated
    out = capsys.readouterr().out
    assert "GPT504" not in out  # compiled (nanoGPT's default), batch 16 does fit ~10.5 GB
    assert main(["--fix", "--unsafe-fixes", str(path)]) == 0
    capsys.readouterr()
    lines = path.read_text().splitlines()
    assert lines[2] == "# ~64M parameters; batch 16 x block 1024 should fit easily in ~10.5 GB."
    assert main([str(path), "--select", "ALL"]) == 0


def test_run_eager_the_seed_config_is_rebatched_and_its_comment_follows(tmp_path, capsys):
    path = tmp_path / "config" / EXAMPLE.name
    path.parent.mkdir()
    path.write_text(EXAMPLE.read_text().replace("n_head = 12", "n_head = 8") + "compile = False\n")
    assert main(["--fix", "--unsafe-fixes", str(path)]) == 0
    capsys.readouterr()
    lines = path.read_text().splitlines()
    assert lines[2] == "# ~64M parameters; batch 8 x block 1024 should fit easily in ~10.5 GB."
    assert "batch_size = 8" in lines and "gradient_accumulation_steps = 64" in lines
