"""A chart of one memory check: peak memory by category against the budget, as SVG.

Hand-written SVG through `xml.etree.ElementTree` (always well-formed, text escaped), no
plotting library: a horizontal bar stacked by category, a dashed line at the budget, the total,
the verdict and the GPU, a legend with every non-zero category in GiB, and `title` / `desc`
elements that say all of it to a screen reader.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from gptlint.facts.units import GIB, MIB
from pytest_gptcfg.results import MemoryResult

SVG_NS = "http://www.w3.org/2000/svg"

LABELS = {
    "parameters": "Parameters",
    "gradients": "Gradients",
    "optimizer_state": "Optimizer state",
    "adamw_state": "AdamW state",
    "muon_state": "Muon state",
    "optimizer_step": "Optimizer step buffers",
    "weight_copies": "Autocast weight copies",
    "weight_casts": "Weight casts",
    "activations": "Activations",
    "attention": "Attention",
    "logits_and_loss": "Logits and loss",
    "rotary": "Rotary buffers",
    "allocator_overhead": "Allocator overhead",
    "cuda_context": "CUDA context",
}
"""What the chart calls each `MemoryResult.breakdown` key, in the order the bar stacks them: a
nanoGPT check's keys (`gptlint.runmodel.estimate.BREAKDOWN_LABELS`) and a nanochat run's
(`gptlint.runmodel.chatestimate.CHAT_BREAKDOWN_LABELS`), each in its own order."""

COLOURS = {
    "parameters": "#0072B2",
    "gradients": "#56B4E9",
    "optimizer_state": "#009E73",
    "adamw_state": "#009E73",
    "muon_state": "#117733",
    "optimizer_step": "#44AA99",
    "weight_copies": "#F0E442",
    "weight_casts": "#F0E442",
    "activations": "#E69F00",
    "attention": "#882255",
    "logits_and_loss": "#D55E00",
    "rotary": "#332288",
    "allocator_overhead": "#CC79A7",
    "cuda_context": "#999999",
}
"""Okabe-Ito colours, distinguishable with the common colour-vision deficiencies; a nanochat
run's four categories beyond nanoGPT's take four of Paul Tol's (muted) colours."""

_WIDTH = 800
_LEFT, _RIGHT = 40, 760
_BAR_TOP, _BAR_HEIGHT = 112, 40
_LEGEND_TOP, _ROW = 222, 22
_FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
_OK, _BAD, _GREY = "#1a7f37", "#b42318", "#444444"


def format_size(n: int) -> str:
    """`n` bytes in GiB (two decimals), or in MiB below 0.01 GiB."""
    if abs(n) >= GIB / 100:
        return f"{n / GIB:.2f} GiB"
    return f"{n / MIB:.1f} MiB"


def total_bytes(result: MemoryResult) -> int:
    """What the verdict judges: peak reserved memory plus the CUDA context."""
    return result.peak_reserved_bytes + result.context_bytes


def verdict(result: MemoryResult) -> str:
    """One sentence: fits or not, how it was found, the total, the budget, the margin."""
    total, budget = total_bytes(result), result.budget_bytes
    numbers = f"needs {format_size(total)}, budget {format_size(budget)}"
    if result.fits:
        return f"fits ({result.mode}): {numbers}, {format_size(budget - total)} to spare"
    if total > budget:
        return f"does not fit ({result.mode}): {numbers}, over by {format_size(total - budget)}"
    return (
        f"does not fit ({result.mode}): out of memory at {format_size(total)} "
        f"with a budget of {format_size(budget)}"
    )


def write_breakdown_svg(result: MemoryResult, path: str | Path, title: str | None = None) -> Path:
    """Write the chart of `result` to `path` (`title`: what was checked, e.g. the config file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(breakdown_svg(result, title)).write(path, encoding="utf-8", xml_declaration=True)
    return path


def breakdown_svg(result: MemoryResult, title: str | None = None) -> ET.Element:
    """The chart of `result` as an `<svg>` element."""
    parts = [(key, result.breakdown.get(key, 0)) for key in LABELS]
    parts = [(key, size) for key, size in parts if size > 0]
    total, budget = total_bytes(result), result.budget_bytes
    heading = f"Peak GPU memory of {title}" if title else "Peak GPU memory"
    status = verdict(result)
    height = _LEGEND_TOP + _ROW * len(parts) + 12

    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": str(_WIDTH),
            "height": str(height),
            "viewBox": f"0 0 {_WIDTH} {height}",
            "role": "img",
            "aria-labelledby": "chart-title chart-desc",
            "font-family": _FONT,
        },
    )
    _sub(svg, "title", {"id": "chart-title"}, f"{heading}: {status}")
    _sub(svg, "desc", {"id": "chart-desc"}, _description(result, parts, status))
    _sub(svg, "rect", {"width": "100%", "height": "100%", "fill": "white"})

    _text(svg, _LEFT, 30, heading, size=18, weight="bold")
    _text(svg, _LEFT, 52, result.device_name, size=13, fill=_GREY)
    line = f"{'✓' if result.fits else '✗'} {status}"
    _text(svg, _LEFT, 76, line, size=15, weight="bold", fill=_OK if result.fits else _BAD)

    scale = (_RIGHT - _LEFT) / (max(total, budget, sum(s for _, s in parts), 1) * 1.05)
    bar = _sub(svg, "g", {"id": "bar"})
    x = float(_LEFT)
    for key, size in parts:
        rect = _sub(bar, "rect", _box(x, _BAR_TOP, size * scale, _BAR_HEIGHT, COLOURS[key]))
        rect.set("stroke", "white")
        _sub(rect, "title", {}, f"{LABELS[key]}: {format_size(size)}")
        x += size * scale
    total_x = _LEFT + total * scale
    _axis(svg, scale, max(total, budget), avoid=total_x)
    _sub(svg, "line", _vline(total_x, _BAR_TOP + _BAR_HEIGHT, 184, "#222222"))
    total_label = f"total {format_size(total)}"
    _text(svg, total_x, 198, total_label, size=13, weight="bold", anchor=_anchor(total_x))

    budget_x = _LEFT + budget * scale
    marker = _sub(svg, "g", {"id": "budget"})
    line_attrs = _vline(budget_x, _BAR_TOP - 8, _BAR_TOP + _BAR_HEIGHT + 8, _BAD)
    _sub(marker, "line", {**line_attrs, "stroke-width": "2", "stroke-dasharray": "6 3"})
    budget_label = f"budget {format_size(budget)}"
    _text(
        marker, budget_x, _BAR_TOP - 12, budget_label, size=13, anchor=_anchor(budget_x), fill=_BAD
    )

    legend = _sub(svg, "g", {"id": "legend"})
    for i, (key, size) in enumerate(parts):
        y = _LEGEND_TOP + i * _ROW
        _sub(legend, "rect", _box(_LEFT, y - 12, 14, 14, COLOURS[key]))
        _text(legend, _LEFT + 22, y, LABELS[key], size=13)
        _text(legend, _LEFT + 260, y, format_size(size), size=13, anchor="end")
        share = f"{100 * size / total:.1f}% of total" if total else ""
        _text(legend, _LEFT + 280, y, share, size=13, fill=_GREY)
    return svg


def _description(result: MemoryResult, parts: list[tuple[str, int]], status: str) -> str:
    items = "; ".join(f"{LABELS[key]} {format_size(size)}" for key, size in parts)
    return f"Peak memory on {result.device_name}: {status}. By category: {items}."


def _axis(svg: ET.Element, scale: float, top: int, avoid: float) -> None:
    """Ticks under the bar; no label within reach of the total's leader line at `avoid`."""
    axis = _sub(svg, "g", {"id": "axis", "aria-hidden": "true"})
    y = _BAR_TOP + _BAR_HEIGHT
    step = _tick_step(top)
    ticks = range(0, top + 1, step)
    for tick in ticks:
        x = _LEFT + tick * scale
        _sub(axis, "line", _vline(x, y, y + 5, "#666666"))
        label = f"{tick / GIB:g}" + (" GiB" if tick == ticks[-1] else "")
        if abs(x - avoid) > 16:
            _text(axis, x, y + 18, label, size=11, anchor="middle", fill="#666666")


def _tick_step(top: int) -> int:
    """A round tick spacing giving at most 8 ticks up to `top` bytes."""
    for gib in (0.25, 0.5, 1, 2, 4, 5, 10, 20, 40, 50, 100, 200, 500):
        if top / (gib * GIB) <= 8:
            return int(gib * GIB)
    return int(top / 8) + 1


def _vline(x: float, y1: float, y2: float, colour: str) -> dict[str, str]:
    return {"x1": f"{x:.2f}", "x2": f"{x:.2f}", "y1": str(y1), "y2": str(y2), "stroke": colour}


def _anchor(x: float) -> str:
    """Text anchor keeping a label at `x` inside the chart."""
    if x < _LEFT + 80:
        return "start"
    return "end" if x > _RIGHT - 80 else "middle"


def _box(x: float, y: float, width: float, height: float, fill: str) -> dict[str, str]:
    return {
        "x": f"{x:.2f}",
        "y": f"{y:.2f}",
        "width": f"{width:.2f}",
        "height": f"{height:.2f}",
        "fill": fill,
    }


def _sub(
    parent: ET.Element, tag: str, attrs: dict[str, str], text: str | None = None
) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def _text(
    parent: ET.Element,
    x: float,
    y: float,
    text: str,
    size: int,
    anchor: str = "start",
    weight: str = "normal",
    fill: str = "#111111",
) -> ET.Element:
    attrs = {"x": f"{x:.2f}", "y": f"{y:.2f}", "font-size": str(size), "fill": fill}
    if anchor != "start":
        attrs["text-anchor"] = anchor
    if weight != "normal":
        attrs["font-weight"] = weight
    return _sub(parent, "text", attrs, text)
