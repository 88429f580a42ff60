"""The simulation and the analytical estimate against real CUDA measurements.

`tests/data/cuda_records/*.json` are written by `benchmarks/accuracy.py --record` on a GPU. Every
recorded eager config is simulated again here, for the recorded GPU, and must land within the
targets: 5% of measured peak allocated and 8% of peak reserved for the simulation, 15% of peak
allocated for the estimate. A compiled run is checked against the claim the product makes for
it: the eager simulation is an upper bound.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.units import MIB

pytest.importorskip("torch")

from gptlint.runmodel.trainingrun import ModelShape, StepSpec
from pytest_gptcfg.engine.check import (
    analytical_estimate,
    check_memory,
)

RECORDS = Path(__file__).resolve().parents[1] / "data" / "cuda_records"
SIMULATED_ALLOCATED, SIMULATED_RESERVED, ESTIMATED = 0.05, 0.08, 0.15


def _recorded_cases() -> list:
    cases = []
    for path in sorted(RECORDS.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        for row in record["results"]:
            measured = row["measured"]
            if measured is None or measured["oom"]:
                continue
            label = f"{path.stem}: {row['config']}"
            cases.append(pytest.param(record, row, id=label))
    return cases


def profile_of(record: dict) -> GpuProfile:
    """The recorded GPU as a profile, so the simulation targets the card that was measured."""
    return GpuProfile(
        "recorded",
        record["gpu"],
        record["budget_bytes"] // MIB,
        tuple(record["compute_capability"]),
        record["bf16"],
    )


def deviations(row: dict, simulated, estimate: int) -> list[str]:
    """The targets a recorded eager config misses, as readable lines (empty: all met)."""
    measured = row["measured"]
    checks = [
        ("simulated peak allocated", simulated.peak_allocated_bytes,
         measured["peak_allocated_bytes"], SIMULATED_ALLOCATED),
        ("simulated peak reserved", simulated.peak_reserved_bytes,
         measured["peak_reserved_bytes"], SIMULATED_RESERVED),
        ("analytical estimate", estimate, measured["peak_allocated_bytes"], ESTIMATED),
    ]  # fmt: skip
    misses = []
    for what, value, truth, tolerance in checks:
        error = (value - truth) / truth
        if abs(error) > tolerance:
            misses.append(f"{what} {value / 2**30:.2f} GiB vs measured {truth / 2**30:.2f} GiB:"
                          f" {error:+.1%} (target ±{tolerance:.0%})")  # fmt: skip
    return misses


CASES = _recorded_cases()


@pytest.mark.skipif(
    not CASES,
    reason="no CUDA measurements recorded yet: on a GPU run "
    "`python benchmarks/accuracy.py --record tests/data/cuda_records/<gpu>.json`",
)
@pytest.mark.parametrize(("record", "row"), CASES)
def test_simulation_and_estimate_match_the_recorded_measurement(record, row):
    spec = StepSpec.from_record(row["spec"])
    profile = profile_of(record)
    simulated = check_memory(spec, profile, record["budget_bytes"], mode="simulate")
    if spec.compile:
        measured = row["measured"]["peak_allocated_bytes"]
        assert measured <= simulated.peak_allocated_bytes * (1 + SIMULATED_ALLOCATED)
        return
    assert deviations(row, simulated, analytical_estimate(spec, profile)) == []


def test_the_checker_reports_a_miss_and_accepts_a_match():
    """The comparison itself, on made-up numbers (not measurements)."""

    class Peaks:
        peak_allocated_bytes = 100 * MIB
        peak_reserved_bytes = 110 * MIB

    close = {"measured": {"peak_allocated_bytes": 98 * MIB, "peak_reserved_bytes": 105 * MIB}}
    assert deviations(close, Peaks, 90 * MIB) == []
    far = {"measured": {"peak_allocated_bytes": 90 * MIB, "peak_reserved_bytes": 100 * MIB}}
    misses = deviations(far, Peaks, 70 * MIB)
    assert [m.split(" ")[0] for m in misses] == ["simulated", "simulated", "analytical"]
    assert "+11.1% (target ±5%)" in misses[0]


def test_a_recorded_spec_reads_back_as_the_spec_that_was_run():
    spec = StepSpec(ModelShape(12, 12, 576, 1024, 50304, False, 0.1), 16, 1024, 8, "float16", True)
    assert StepSpec.from_record(json.loads(json.dumps(spec.to_record()))) == spec
