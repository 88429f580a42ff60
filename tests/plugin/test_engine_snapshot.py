"""`check_memory(..., snapshot=PATH)`: a config that does not fit leaves a memory_viz snapshot
and a breakdown chart behind; one that fits leaves nothing."""

from __future__ import annotations

import pickle
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("torch")

from gptlint.facts.gpus import get_profile
from gptlint.facts.units import MIB
from gptlint.runmodel.trainingrun import ModelShape, StepSpec
from pytest_gptcfg.engine.check import check_memory

SMALL = StepSpec(ModelShape(2, 2, 64, 64, 512, False, 0.0), 4, 64, 1, "bfloat16", False)


def test_a_failing_config_writes_a_snapshot_torch_can_read_and_a_chart(tmp_path):
    from torch.cuda import _memory_viz

    path = tmp_path / "small.pickle"
    result = check_memory(SMALL, get_profile("rtx4070"), 510 * MIB, mode="simulate", snapshot=path)
    assert not result.fits
    snapshot = pickle.loads(path.read_bytes())
    actions = {event["action"] for event in snapshot["device_traces"][0]}
    assert {"segment_alloc", "alloc", "free_requested", "free_completed"} <= actions
    assert "Summary of segments" in _memory_viz.segsum(snapshot)
    chart = ET.parse(path.with_suffix(".svg")).getroot()
    assert chart.tag.endswith("svg")
    assert any(str(path) in note and "memory_viz" in note for note in result.notes)


def test_a_config_that_fits_writes_nothing(tmp_path):
    path = tmp_path / "small.pickle"
    profile = get_profile("rtx4070")
    result = check_memory(SMALL, profile, profile.usable_bytes, mode="simulate", snapshot=path)
    assert result.fits
    assert list(tmp_path.iterdir()) == []
