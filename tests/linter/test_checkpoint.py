"""A resume checkpoint is read as bounded plain data: hostile archives end in one clear line."""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.nanogpt.checkpoint import CheckpointError, read_checkpoint_model_args
from gptlint.nanogpt.derive import derive_run
from gptlint.nanogpt.resolve import load_config

ARGS = {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64, "bias": False, "vocab_size": 65}


def archive(path: Path, payload: bytes, method: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=method) as out:
        out.writestr("ckpt/data.pkl", payload)
    return path


def patched(path: Path, offset_in_header: int, fmt: str, value: int) -> Path:
    """Overwrite one field of every local and central header of the zip at `path`."""
    data = bytearray(path.read_bytes())
    for signature, base in ((b"PK\x03\x04", 0), (b"PK\x01\x02", 2)):
        start = data.find(signature)
        struct.pack_into(fmt, data, start + base + offset_in_header, value)
    path.write_bytes(bytes(data))
    return path


def test_a_plain_checkpoint_gives_its_model_args(tmp_path):
    path = archive(tmp_path / "ckpt.pt", pickle.dumps({"model_args": ARGS, "iter_num": 3}))
    assert read_checkpoint_model_args(path) == ARGS


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: archive(p, b"\0" * 100_000_000), "larger than 64,000,000 bytes"),
        (lambda p: patched(archive(p, pickle.dumps({})), 8, "<H", 99), "compression"),
        (lambda p: patched(archive(p, pickle.dumps({})), 6, "<H", 1), "encrypted"),
        (lambda p: p.write_bytes(b"PK\x03\x04garbage") and p, "not a zip-format"),
        (lambda p: archive(p, b"\x80\x05" + b"(" * 5000), "nested more than"),
        (lambda p: archive(p, pickle.dumps({"model_args": "x"})), "no nanoGPT `model_args`"),
    ],
    ids=["zip-bomb", "method-99", "encrypted", "not-a-zip", "deep", "no-args"],
)
def test_a_hostile_checkpoint_is_one_clear_error(tmp_path, make, message):
    path = make(tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint_model_args(path)


@pytest.mark.parametrize("bad", [None, "12", -4, 2**63])
def test_model_args_that_cannot_be_built_are_a_problem_not_a_crash(tmp_path, bad):
    archive(tmp_path / "out" / "ckpt.pt", pickle.dumps({"model_args": {**ARGS, "n_embd": bad}}))
    config = tmp_path / "config" / "r.py"
    config.parent.mkdir()
    config.write_text("init_from = 'resume'\n")
    problems = derive_run(load_config(config), get_profile("rtx4070"), root=tmp_path).problems
    assert problems
    assert "model_args n_embd=" in str(problems[0]) and "cannot be built" in str(problems[0])
