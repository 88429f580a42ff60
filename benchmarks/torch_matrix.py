"""The plugin's simulation on every supported torch release: one table of peaks per release.

For each release (by default the newest patch of each minor release from the floor in
pyproject.toml to the newest one served), this script makes a virtual environment with that
torch (cached: made once, reused after), then simulates, eager and compiled, on an RTX 4070
profile:

- GPT-2 124M (12/12/768, vocab 50304) at batch 12 x 1024,
- the seed scenario's 12/12/576 at batch 16 x 1024,
- a character-level model (shakespeare-char: 6/6/384, vocab 65) at batch 64 x 256,

and prints per release and config: the step that ran, how (simulated, or estimated where the
compiled plan failed its checks), peak allocated and reserved, and the seconds it took (the
compiled plans cold: each run plans into a fresh cache).

    python benchmarks/torch_matrix.py [--releases 2.11.0 2.14.1] [--venvs DIR] [--cached]

Disk: registry builds of torch are CUDA builds of 4.5-6.5 GB each (`torch==2.13.0` alone has
a small CPU build here); the ten releases 2.5-2.14 take about 55 GB under `--venvs` (default
`$GPTLINT_TORCH_MATRIX`, else `~/.cache/gptlint-torch-matrix`), outside the repository.
The project is not installed there: each run puts this checkout's `src/` first on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASES = (
    "2.5.1", "2.6.0", "2.7.1", "2.8.0", "2.9.1", "2.10.0", "2.11.0", "2.12.1", "2.13.0", "2.14.1",
)  # fmt: skip
"""The newest patch of each minor release from the floor to the newest served here."""

CASES = {
    # name: (n_layer, n_head, n_embd, block_size, vocab_size, batch_size)
    "gpt2-124M b12": (12, 12, 768, 1024, 50304, 12),
    "seed 12/12/576 b16": (12, 12, 576, 1024, 50304, 16),
    "char 6/6/384 b64": (6, 6, 384, 256, 65, 64),
}

WORKER = """
import json, sys, time, dataclasses, warnings
warnings.filterwarnings("ignore")
import torch
from gptlint.facts.gpus import get_profile
from gptlint.runmodel.trainingrun import ModelShape, StepSpec
from pytest_gptcfg.engine.check import check_memory
profile = get_profile("rtx4070")
for name, (layers, heads, width, block, vocab, batch) in json.loads(sys.argv[1]).items():
    shape = ModelShape(layers, heads, width, block, vocab, False, 0.0)
    for compile in (False, True):
        spec = StepSpec(shape, batch, block, 1, "bfloat16", compile)
        start = time.perf_counter()
        result = check_memory(spec, profile, profile.usable_bytes, mode="simulate")
        print(json.dumps({
            "torch": torch.__version__, "case": name, "compile": compile,
            "step": "compiled" if result.compiled else "eager", "mode": str(result.mode),
            "allocated": result.peak_allocated_bytes, "reserved": result.peak_reserved_bytes,
            "fits": result.fits, "seconds": time.perf_counter() - start,
            "notes": [n for n in result.notes if "not simulated" in n or "outside" in n],
        }), flush=True)
"""


def venv_python(folder: Path, release: str) -> Path:
    """The Python of the cached venv for `release`, made (torch, libcst, pytest) if missing."""
    venv = folder / f"torch-{release}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv} (torch=={release}) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, f"torch=={release}", "libcst", "pytest"], check=True)
    return python


def run_release(python: Path, cached: bool) -> list[dict]:
    """The worker's rows for one release (a fresh plan cache unless `cached`)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as cache:
        if not cached:
            env["GPTCFG_CACHE_DIR"] = cache
        done = subprocess.run(
            [str(python), "-c", WORKER, json.dumps(CASES)],
            env=env,
            capture_output=True,
            text=True,
        )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        rows.append({"error": f"exit {done.returncode}: {tail[0][:200]}"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", nargs="+", default=list(RELEASES))
    default = os.environ.get("GPTLINT_TORCH_MATRIX") or Path.home() / ".cache/gptlint-torch-matrix"
    parser.add_argument("--venvs", type=Path, default=Path(default))
    parser.add_argument("--cached", action="store_true", help="reuse the plans already cached")
    args = parser.parse_args()
    args.venvs.mkdir(parents=True, exist_ok=True)
    header = f"{'torch':<14} {'config':<20} {'compile':<8} {'ran':<9} {'mode':<10}"
    print(f"{header} {'allocated':>10} {'reserved':>10} {'fits':>5} {'seconds':>8}")
    for release in args.releases:
        start = time.perf_counter()
        for row in run_release(venv_python(args.venvs, release), args.cached):
            if "error" in row:
                print(f"{release:<14} {row['error']}")
                continue
            print(
                f"{row['torch']:<14} {row['case']:<20} {row['compile']!s:<8} "
                f"{row['step']:<9} {row['mode']:<10} {row['allocated'] / 2**30:>8.3f} G "
                f"{row['reserved'] / 2**30:>8.3f} G {'yes' if row['fits'] else 'NO':>5} "
                f"{row['seconds']:>8.1f}"
            )
            for note in row["notes"]:
                print(f"{'':<14} note: {note[:150]}")
        print(f"{'':<14} ({time.perf_counter() - start:.0f} s for {release})", flush=True)


if __name__ == "__main__":
    main()
