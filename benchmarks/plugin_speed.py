"""Speed of the memory check against its goals, simulated (no GPU needed).

Run: `python benchmarks/plugin_speed.py [--quick]`. Prints one table with a `goal` column:

- a gauge of the machine's speed (10^7 Python additions), first and again last: the
  machines these goals are set on drift by half within a day;
- one eager simulation of GPT-2 124M at batch 12 (best of 3);
- the compiled simulation of it, cold (an empty plan cache: Inductor captures its batch alone,
  the graphs of every batch, with the batch as a symbol, captured in a fork beside it; the
  backward's lowered in a fork where a core is spare), and, each in a fresh process, as a
  check that a search follows (the graphs of every batch captured first, as for a config
  that does not fit or a `--gpt-report` run) and with no fork at all; then cached
  (`pytest_gptcfg.engine.compiledstep.plan_cache_dir`); then its largest-batch search, which
  plans each batch it probes from the graphs of every batch, once the fork has cached them
  (the captures it made here are counted);
- the largest-batch search of that config (simulations and seconds), beside the doubling and
  bisecting search it replaced (gptlint's `largest_fitting`), which must give the same answer;
- a nanoGPT-like folder of 7 configs written here (not nanoGPT's files) run through
  `pytest --gpt-configs ... --gpt-report` in a fresh process: eager and cold; then compiled
  (nanoGPT's default), cold and again with its plans cached. Hypothesis's pytest plugin is
  left out of those runs (`-p no:hypothesispytest`): hypothesis is in this environment for
  our own tests, not a user's, and its plugin imports it at the terminal summary (a second
  here, where PYTHONDONTWRITEBYTECODE makes pytest rewrite its modules at every run).

`--quick` skips the compiled rows, the compiled folder and the replaced search.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.metadata import entry_points
from pathlib import Path

from gptlint.facts.gpus import get_profile
from gptlint.runmodel.estimate import largest_fitting
from gptlint.runmodel.trainingrun import ModelShape, StepSpec
from pytest_gptcfg.engine.check import check_memory, find_max_batch_size, import_torch

torch = import_torch()

GIB = 1024**3
PROFILE = get_profile("rtx4070")
BUDGET = PROFILE.usable_bytes
GPT2 = StepSpec(ModelShape(12, 12, 768, 1024, 50304, False, 0.0), 12, 1024, 40, "bfloat16", False)
SRC = Path(__file__).resolve().parents[1] / "src"

CONFIGS = {
    "train_shakespeare_char.py": """
        out_dir = 'out-shakespeare-char'
        dataset = 'shakespeare_char'
        gradient_accumulation_steps = 1
        batch_size = 64
        block_size = 256
        n_layer = 6
        n_head = 6
        n_embd = 384
        dropout = 0.2
        learning_rate = 1e-3
        compile = False
    """,
    "train_gpt2.py": """
        batch_size = 12
        block_size = 1024
        gradient_accumulation_steps = 5 * 8
        max_iters = 600000
        compile = False
    """,
    "train_gpt2_b8.py": """
        batch_size = 8
        block_size = 1024
        gradient_accumulation_steps = 60
        compile = False
    """,
    "train_gpt2_medium.py": """
        n_layer = 24
        n_head = 16
        n_embd = 1024
        batch_size = 4
        block_size = 1024
        gradient_accumulation_steps = 32
        compile = False
    """,
    "train_small_fp16.py": """
        n_layer = 4
        n_head = 4
        n_embd = 256
        batch_size = 32
        block_size = 512
        dtype = 'float16'
        compile = False
    """,
    "train_seed.py": """
        n_layer = 12
        n_head = 12
        n_embd = 576
        batch_size = 16
        block_size = 1024
        gradient_accumulation_steps = 8
        compile = False
    """,
    "eval_gpt2.py": """
        batch_size = 8
        eval_iters = 20
        eval_only = True
        compile = False
    """,
}


def best_of(runs: int, call) -> tuple[float, object]:
    times, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - start)
    return min(times), value


def gauge_row() -> tuple[str, str, str, str]:
    """The machine's speed while this ran: 10^7 Python additions (best of 3). These machines'
    speed drifts by half within a day; compare two runs of this table by it."""

    def additions() -> int:
        total = 0
        for number in range(10**7):
            total += number
        return total

    seconds, _ = best_of(3, additions)
    return ("gauge: 10^7 Python additions", f"{seconds:.2f} s", "", "the machine's speed now")


def eager_row() -> tuple[str, str, str, str]:
    seconds, _ = best_of(3, lambda: check_memory(GPT2, PROFILE, BUDGET, mode="simulate"))
    return ("eager simulation, GPT-2 124M b12", f"{seconds:.2f} s", "< 1 s", "")


def compiled_rows() -> list[tuple[str, str, str, str]]:
    from pytest_gptcfg.engine import compiled, forked

    spec = dataclasses.replace(GPT2, compile=True)
    captures: list[bool] = []
    capture = compiled.capture_graphs

    def counted(target: compiled.Target, symbolic: bool = False) -> dict:
        captures.append(symbolic)
        return capture(target, symbolic)

    compiled.capture_graphs = counted  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GPTCFG_CACHE_DIR"] = cache
        try:
            cold, result = best_of(1, lambda: check_memory(spec, PROFILE, BUDGET, "simulate"))
            cached, _ = best_of(3, lambda: check_memory(spec, PROFILE, BUDGET, "simulate"))
            before = len(captures)
            probed: list[int] = []
            start = time.perf_counter()
            best = find_max_batch_size(spec, PROFILE, BUDGET, known=result, probed=probed)
            search = time.perf_counter() - start
        finally:
            del os.environ["GPTCFG_CACHE_DIR"]
            compiled.capture_graphs = capture  # type: ignore[assignment]
    searching, here = cold_in_fresh_process("searching"), cold_in_fresh_process("no fork")
    note = "" if result.compiled else "fell back to eager"
    made = len(captures) - before
    alone = any("for this batch size alone" in n for n in result.notes)
    how = "its batch alone; the graphs of every batch beside it" if alone else "symbolic batch"
    spare = "" if forked.spare_cores() else " (no spare core: no fork)"
    waited = "waited for the graphs captured beside; " if alone else ""
    return [
        ("compiled simulation, cold", f"{cold:.2f} s", "<= 10 s", note + how + spare),
        ("  same, a search to follow", f"{searching:.2f} s", "", "symbolic batch"),
        ("  same, both graphs lowered here", f"{here:.2f} s", "", "no fork"),
        ("compiled simulation, cached", f"{cached:.2f} s", "< 2 s", note),
        (
            "compiled batch search (answer)",
            f"{len(probed)} sims, {search:.1f} s (b={best})",
            "no capture",
            f"{waited}{made} more captures of graphs here",
        ),
    ]


def cold_in_fresh_process(how: str) -> float:
    """Seconds of the cold compiled simulation of GPT-2 b12 in a fresh process as the
    `compiled simulation, cold` row's (torch loaded and an eager simulation run, Inductor not
    yet loaded), so that no row follows another: 'searching' (a search of the largest batch
    to follow: the graphs of every batch captured first) or 'no fork' (no fork at all, both
    graphs lowered in the process)."""
    script = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    script += f"import plugin_speed; print(plugin_speed.cold_check({how!r}))"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    return float(done.stdout.split()[-1]) if done.returncode == 0 else float("nan")


def cold_check(how: str) -> float:
    """`cold_in_fresh_process`'s work, in that process."""
    from pytest_gptcfg.engine import forked

    check_memory(GPT2, PROFILE, BUDGET, mode="simulate")
    forked.ENABLED = how != "no fork"
    spec = dataclasses.replace(GPT2, compile=True)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GPTCFG_CACHE_DIR"] = cache
        seconds, _ = best_of(
            1,
            lambda: check_memory(
                spec, PROFILE, BUDGET, mode="simulate", searching=how == "searching"
            ),
        )
    return seconds


def search_rows(quick: bool) -> list[tuple[str, str, str, str]]:
    known = check_memory(GPT2, PROFILE, BUDGET, mode="simulate")
    probed: list[int] = []
    start = time.perf_counter()
    best = find_max_batch_size(GPT2, PROFILE, BUDGET, probed=probed)
    seconds = time.perf_counter() - start
    reused: list[int] = []
    find_max_batch_size(GPT2, PROFILE, BUDGET, known=known, probed=reused)
    rows = [
        (
            "batch search, GPT-2 124M (answer)",
            f"{len(probed)} sims, {seconds:.1f} s (b={best})",
            "<= 3 sims",
            f"{len(reused)} more after the plugin's own check",
        )
    ]
    if not quick:
        old: list[int] = []

        def fits(batch: int) -> bool:
            old.append(batch)
            probe = dataclasses.replace(GPT2, batch_size=batch)
            return check_memory(probe, PROFILE, BUDGET, mode="simulate").fits

        start = time.perf_counter()
        answer = largest_fitting(fits, 4096)
        seconds = time.perf_counter() - start
        same = "same answer" if answer == best else f"DIFFERENT ANSWER {answer}"
        rows.append(
            ("  replaced: doubling + bisection", f"{len(old)} sims, {seconds:.1f} s", "", same)
        )
    return rows


def run_folder(root: Path, compiled: bool) -> tuple[float, str]:
    """`pytest --gpt-configs config --gpt-report` over `CONFIGS` in a fresh process, eager as
    written or with `compile = False` taken out (nanoGPT's default: compiled); plans are
    cached in `root`/cache. Seconds and pytest's last line."""
    folder = root / "config"
    folder.mkdir(exist_ok=True)
    for name, text in CONFIGS.items():
        text = textwrap.dedent(text).lstrip()
        if compiled:
            text = text.replace("compile = False\n", "")
        (folder / name).write_text(text, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(SRC), GPTCFG_CACHE_DIR=str(root / "cache"))
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "no:hypothesispytest"]  # our tests' plugin, not a user's
    installed = any(ep.name == "gptcfg" for ep in entry_points(group="pytest11"))
    command += [] if installed else ["-p", "pytest_gptcfg.plugin"]
    command += ["--gpt-configs", "config", "--gpt-report", "report.json"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, (done.stdout.strip().splitlines() or ["(no output)"])[-1]


def folder_rows(quick: bool) -> list[tuple[str, str, str, str]]:
    """The eager folder, cold; unless `quick`, the compiled folder cold and with its plans
    cached (the second run over the same cache)."""
    name = f"{len(CONFIGS)}-config folder, --gpt-report"
    with tempfile.TemporaryDirectory() as root:
        seconds, last = run_folder(Path(root), compiled=False)
        rows = [(f"{name}, eager", f"{seconds:.1f} s", "< 60 s", last)]
    if quick:
        return rows
    with tempfile.TemporaryDirectory() as root:
        seconds, last = run_folder(Path(root), compiled=True)
        rows.append((f"{name}, compiled, cold", f"{seconds:.1f} s", "<= 90 s", last))
        seconds, last = run_folder(Path(root), compiled=True)
        rows.append((f"{name}, compiled, plans cached", f"{seconds:.1f} s", "<= 10 s", last))
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"torch {torch.__version__}; target {PROFILE.label}; budget {BUDGET / GIB:.2f} GiB")
    rows = [gauge_row(), eager_row()]
    if not quick:
        rows += compiled_rows()
    rows += search_rows(quick)
    rows += folder_rows(quick)
    rows.append(gauge_row())
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    header = ("what", "now", "goal", "note")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=False)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), row[3])


if __name__ == "__main__":
    main()
