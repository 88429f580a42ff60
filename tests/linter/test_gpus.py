"""GPU profiles: every figure names where it came from, and data-centre budgets are what
PyTorch can use (less than nvidia-smi's total) wherever a source was found."""

from __future__ import annotations

import ast
import inspect
import re

import pytest

from gptlint.facts import gpus
from gptlint.facts.gpus import PROFILES
from gptlint.facts.units import MIB

NONE_FOUND = "nvidia-smi total; no PyTorch-reported figure found"
FILE = re.compile(r"\S+/\S+ \S+\.(md|py|ipynb):")  # owner/name path.ext:

# nvidia-smi's totals of the data-centre cards, as listed in modal-labs/modal-client pull
# request #2797 (the H200's in NVIDIA/cuda-samples issue #311, driver 550.54.15): the budgets
# must stay below these where a PyTorch figure was found.
NVIDIA_SMI_MIB = {
    "t4": 15360,
    "l4": 23034,
    "a100-40gb": 40960,
    "a100-80gb": 81920,
    "h100-80gb": 81559,
    "h200": 143771,
}


def _comments() -> dict[str, str]:
    """Each profile's name -> the comment lines directly above its `GpuProfile(...)` call."""
    lines = inspect.getsource(gpus).splitlines()
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GpuProfile":
            name = node.args[0].value  # type: ignore[attr-defined]
            above, i = [], node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#"):
                above.insert(0, lines[i].strip().lstrip("#").strip())
                i -= 1
            found[name] = " ".join(above)
    return found


COMMENTS = _comments()


def test_every_profile_is_commented():
    assert set(COMMENTS) == set(PROFILES)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_comment_names_a_source_or_says_none_was_found(name):
    comment = COMMENTS[name]
    assert comment == NONE_FOUND or comment.startswith("source: "), comment
    if comment.startswith("source: "):
        # a repository and an issue/PR or a file, or a page's address
        assert "/" in comment and (" #" in comment or FILE.search(comment) or "://" in comment)


@pytest.mark.parametrize("name", sorted(NVIDIA_SMI_MIB))
def test_data_centre_budget_is_below_nvidia_smi_where_sourced(name):
    profile = PROFILES[name]
    if COMMENTS[name] == NONE_FOUND:
        assert profile.usable_mib == NVIDIA_SMI_MIB[name]
    else:
        assert profile.usable_mib < NVIDIA_SMI_MIB[name]


def test_t4_is_the_most_common_colab_figure():
    # mryab/efficient-dl-systems week01_intro/seminar.ipynb: 15109MB (driver 460.32.03), 15102MB
    # (535.104.05), 15095MB (550.54.15); 15109MB is also the figure of the other T4 logs found
    assert PROFILES["t4"].usable_mib == 15109


def test_a100_40gb_is_the_devicequery_figure_in_whole_mib():
    # 42298834944 bytes (bottlerocket-os/bottlerocket pull request #3873), floored to MiB
    assert PROFILES["a100-40gb"].usable_mib == 42298834944 // MIB


def test_usable_bytes_is_usable_mib_in_bytes():
    for profile in PROFILES.values():
        assert profile.usable_bytes == profile.usable_mib * MIB


def test_every_profile_has_a_cuda_context_and_says_where_it_comes_from():
    for profile in PROFILES.values():
        assert 200 * MIB <= profile.context_bytes <= 2048 * MIB
        assert profile.context_source == "default" or len(profile.context_source) > 20
        if profile.context_source == "default":
            assert profile.context_bytes == gpus.CUDA_CONTEXT_BYTES
    # the published A100 80GB nvidia-smi figure quoted in issue 26
    assert PROFILES["a100-80gb"].context_bytes == 863 * MIB
