"""The breakdown chart: a valid, accessible SVG of peak memory by category against the budget."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from gptlint.runmodel.chatestimate import CHAT_BREAKDOWN_LABELS
from gptlint.runmodel.estimate import BREAKDOWN_LABELS
from pytest_gptcfg.chart import COLOURS, LABELS, format_size, verdict, write_breakdown_svg
from pytest_gptcfg.results import MemoryResult

GiB, MiB = 1024**3, 1024**2
NS = {"svg": "http://www.w3.org/2000/svg"}

OVER = MemoryResult(
    mode="simulated",
    fits=False,
    peak_allocated_bytes=12 * GiB,
    peak_reserved_bytes=12 * GiB + 512 * MiB,
    context_bytes=500 * MiB,
    budget_bytes=12282 * MiB,
    breakdown={
        "parameters": 474 * MiB,
        "gradients": 474 * MiB,
        "optimizer_state": 948 * MiB,
        "weight_copies": 256 * MiB,
        "activations": 4 * GiB,
        "logits_and_loss": 6 * GiB - 1896 * MiB + 2 * GiB - 256 * MiB,
        "allocator_overhead": 512 * MiB,
        "cuda_context": 500 * MiB,
    },
    largest_tensors=[],
    oom=True,
    torch_version="2.13.0",
    device_name="NVIDIA GeForce RTX 4070 (12 GB) (simulated)",
    attention_kernel="flash",
)
FITS = dataclasses.replace(
    OVER,
    mode="measured",
    fits=True,
    oom=False,
    peak_allocated_bytes=180 * MiB,
    peak_reserved_bytes=200 * MiB,
    breakdown={
        "parameters": 40 * MiB,
        "gradients": 40 * MiB,
        "optimizer_state": 80 * MiB,
        "activations": 20 * MiB,
        "logits_and_loss": 0,
        "allocator_overhead": 20 * MiB,
        "cuda_context": 500 * MiB,
    },
    device_name="NVIDIA H100 80GB HBM3",
)


def chart(result: MemoryResult, tmp_path, title: str | None = "config/train_big.py"):
    """The written chart's root element and all of its text, joined."""
    path = write_breakdown_svg(result, tmp_path / "charts" / "chart.svg", title=title)
    root = ET.parse(path).getroot()
    text = " ".join(t.text or "" for t in root.iter(f"{{{NS['svg']}}}text"))
    return root, text


def test_the_chart_is_an_svg_with_a_title_and_a_description(tmp_path):
    root, _ = chart(OVER, tmp_path)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    title = root.find("svg:title", NS).text
    desc = root.find("svg:desc", NS).text
    assert "config/train_big.py" in title and "does not fit" in title
    assert all(LABELS[key] in desc for key in OVER.breakdown)
    assert "budget 11.99 GiB" in desc


def test_every_category_has_a_bar_segment_and_a_legend_label_in_gib(tmp_path):
    root, text = chart(OVER, tmp_path)
    segments = root.findall("svg:g[@id='bar']/svg:rect", NS)
    tooltips = [r.find("svg:title", NS).text for r in segments]
    assert tooltips == [f"{LABELS[k]}: {format_size(v)}" for k, v in OVER.breakdown.items()]
    for key, size in OVER.breakdown.items():
        assert LABELS[key] in text
        assert format_size(size) in text
    assert "4.00 GiB" in text and "0.46 GiB" in text


def test_a_nanochat_run_has_a_bar_segment_for_each_of_its_categories(tmp_path):
    breakdown = {key: (i + 1) * 100 * MiB for i, key in enumerate(CHAT_BREAKDOWN_LABELS)}
    result = dataclasses.replace(OVER, breakdown=breakdown)
    root, text = chart(result, tmp_path, title="runs/speedrun.sh:8 base_train")
    segments = root.findall("svg:g[@id='bar']/svg:rect", NS)
    tooltips = [r.find("svg:title", NS).text for r in segments]
    assert tooltips == [f"{LABELS[k]}: {format_size(v)}" for k, v in breakdown.items()]
    assert len({r.get("fill") for r in segments}) == len(breakdown), "a colour each"
    assert "Muon state" in text and "Rotary buffers" in text


@pytest.mark.parametrize("labels", [BREAKDOWN_LABELS, CHAT_BREAKDOWN_LABELS])
def test_the_chart_stacks_every_category_in_its_labels_order(labels):
    assert [key for key in LABELS if key in labels] == list(labels)
    assert set(COLOURS) == set(LABELS)


def test_segment_widths_are_proportional_to_the_bytes(tmp_path):
    root, _ = chart(OVER, tmp_path)
    widths = [float(r.get("width")) for r in root.findall("svg:g[@id='bar']/svg:rect", NS)]
    sizes = list(OVER.breakdown.values())
    assert widths[3] / widths[0] == pytest.approx(sizes[3] / sizes[0], rel=1e-3)


def test_categories_with_no_bytes_are_left_out(tmp_path):
    root, text = chart(FITS, tmp_path)
    assert LABELS["logits_and_loss"] not in text
    assert len(root.findall("svg:g[@id='bar']/svg:rect", NS)) == 6


def test_the_budget_line_sits_at_the_budget_and_is_labelled(tmp_path):
    root, text = chart(OVER, tmp_path)
    line = root.find("svg:g[@id='budget']/svg:line", NS)
    segments = root.findall("svg:g[@id='bar']/svg:rect", NS)
    px_per_byte = sum(float(r.get("width")) for r in segments) / sum(OVER.breakdown.values())
    expected = float(segments[0].get("x")) + OVER.budget_bytes * px_per_byte
    assert float(line.get("x1")) == float(line.get("x2")) == pytest.approx(expected, abs=0.5)
    assert "budget 11.99 GiB" in text


def test_a_config_that_does_not_fit_shows_by_how_much(tmp_path):
    _, text = chart(OVER, tmp_path)
    assert "does not fit (simulated)" in text
    assert "needs 12.99 GiB, budget 11.99 GiB, over by 0.99 GiB" in text
    assert "total 12.99 GiB" in text
    assert "NVIDIA GeForce RTX 4070 (12 GB)" in text


def test_a_config_that_fits_shows_the_room_to_spare(tmp_path):
    _, text = chart(FITS, tmp_path, title=None)
    assert "Peak GPU memory" in text
    assert "fits (measured): needs 0.68 GiB, budget 11.99 GiB, 11.31 GiB to spare" in text


def test_an_out_of_memory_stop_under_the_budget_is_not_reported_as_over_it():
    stopped = dataclasses.replace(OVER, mode="measured", peak_reserved_bytes=11 * GiB)
    assert verdict(stopped) == (
        "does not fit (measured): out of memory at 11.49 GiB with a budget of 11.99 GiB"
    )


def test_text_is_escaped_so_the_file_stays_well_formed(tmp_path):
    odd = dataclasses.replace(OVER, device_name='GPU <"A&B">')
    _, text = chart(odd, tmp_path, title="config/<weird & odd>.py")
    assert 'GPU <"A&B">' in text
    assert "config/<weird & odd>.py" in text


@pytest.mark.parametrize(("n", "text"), [(3 * GiB // 2, "1.50 GiB"), (3 * MiB, "3.0 MiB")])
def test_sizes_are_in_gib_and_small_ones_in_mib(n, text):
    assert format_size(n) == text


def test_importing_the_chart_does_not_import_torch():
    code = "import sys, pytest_gptcfg.chart; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
