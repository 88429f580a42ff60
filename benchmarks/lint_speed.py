"""How fast gptlint lints a folder of realistic nanoGPT configs, against Fixit on the same files.

    python benchmarks/lint_speed.py [--files 218 1000] [--corpus DIR] [--repeat 3] [--keep DIR]

Generates corpora of configs (seeded, so every run lints the same files), of 218 configs (the
size of the real-config corpus issue 11 names) and of 1000, and takes any folder of real
configs given with `--corpus` (none is bundled: other projects' configs are not ours to ship),
then times on each:

* `gptlint (subprocess)`: `python -m gptlint --exit-zero FOLDER`, a fresh process, startup
  included, the way pre-commit and CI run it (worker processes, one per CPU: `jobs`);
* `gptlint -j 1 (subprocess)`: the same in one process;
* `gptlint (in-process)`: `gptlint.command.cli.main([...])` in this process, after one warm-up run;
* `fixit lint (subprocess)` where Fixit is installed: `fixit lint FOLDER` with its default
  rules (Fixit too spreads files over all CPU cores);
* `python + import libcst`: a process that only starts Python and imports libcst, the floor
  under any libcst-based linter's run. On a small corpus it is most of gptlint's time: with
  218 files, Fixit's few seconds over this floor bound the ratio a run can reach.

Each timing is the best of `--repeat` rounds, each round running every tool in turn. The
ratio is Fixit's seconds over the tool's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HEADERS = (
    "# train a miniature character-level shakespeare model\n# good for debugging\n",
    "# GPT-2 small from scratch on one RTX 4070\n# $ python train.py config/{name}.py\n",
    "# finetune on a small dataset; only save when val improves\n",
    "# fineweb run, tokens per iteration kept near 0.5M\n",
    "",
)
SHAPES = ((6, 6, 384), (12, 12, 768), (12, 8, 512), (8, 8, 512), (4, 4, 128), (24, 16, 1024))
DATASETS = ("shakespeare_char", "openwebtext", "fineweb", "shakespeare", "tinystories")
COMMENTS = (
    "",
    "",
    "",
    "  # keep frequent because we'll overfit",
    " # override via command line if you like",
    "  # make equal to max_iters usually",
    "  # context of up to 256 previous characters",
    "  # TODO: tune",
)


def make_config(rng: random.Random, name: str) -> str:
    """One config in the style of nanoGPT's `config/*.py`: comments, arithmetic, references to
    earlier keys, now and then an import, a GPTConfig call or a shape mistake."""
    n_layer, n_head, n_embd = rng.choice(SHAPES)
    if rng.random() < 0.15:  # the scenario's mistake: a width the heads do not divide
        n_embd = rng.choice((500, 520, 600, 700))
    quote = rng.choice(("'", '"'))
    dataset = rng.choice(DATASETS)

    def c() -> str:
        return rng.choice(COMMENTS)

    lines = [rng.choice(HEADERS).format(name=name)]
    if rng.random() < 0.3:
        lines.append("import time\n")
    lines.append(f"out_dir = {quote}out-{dataset}{quote}{c()}\n")
    lines.append(f"eval_interval = {rng.choice((250, 500, 1000, 2000))}{c()}\n")
    lines.append(f"eval_iters = {rng.choice((20, 40, 100, 200))}\n")
    lines.append(f"log_interval = {rng.choice((1, 10, 100))}\n\n")
    lines.append(f"wandb_log = {rng.choice(('False', 'True'))}{c()}\n")
    lines.append(f"wandb_project = {quote}{dataset}{quote}\n")
    if "import time" in lines[1]:
        lines.append(f"wandb_run_name = {quote}run-{quote} + str(time.time())\n\n")
    else:
        lines.append(f"wandb_run_name = {quote}mini-gpt{quote}\n\n")
    lines.append(f"dataset = {quote}{dataset}{quote}\n")
    accumulation = rng.choice(("1", "4", "5 * 8", "32", "2 * 4"))
    lines.append(f"gradient_accumulation_steps = {accumulation}\n")
    lines.append(f"batch_size = {rng.choice((4, 8, 12, 16, 32, 64))}\n")
    lines.append(f"block_size = {rng.choice((256, 512, 1024))}{c()}\n\n")
    lines.append("# model\n")
    lines.append(f"n_layer = {n_layer}\nn_head = {n_head}{c()}\nn_embd = {n_embd}\n")
    lines.append(f"dropout = {rng.choice(('0.0', '0.1', '0.2'))}\n")
    if rng.random() < 0.1:
        lines.append("bias = False\n")
    if rng.random() < 0.05:
        lines.append(f"n_embed = {n_embd}  # typo\n")
    lines.append("\n# adamw optimizer\n")
    lines.append(f"learning_rate = {rng.choice(('6e-4', '1e-3', '3e-4', '3e-5'))}{c()}\n")
    lines.append(f"max_iters = {rng.choice((5000, 20000, 600000))}\n")
    lines.append(f"lr_decay_iters = {rng.choice(('max_iters', '5000', '600000'))}{c()}\n")
    lines.append(f"min_lr = {rng.choice(('learning_rate / 10', '6e-5', '1e-4'))}\n")
    lines.append(f"beta2 = {rng.choice(('0.95', '0.99'))}\n")
    lines.append(f"warmup_iters = {rng.choice((100, 500, 2000))}{c()}\n")
    if rng.random() < 0.2:
        lines.append("\n# on macbook also add\ndevice = 'cpu'\ncompile = False\n")
    if rng.random() < 0.05:
        lines.append(
            "\nfrom model import GPTConfig\n"
            f"config = GPTConfig(n_layer={n_layer}, n_head={n_head}, n_embd={n_embd})\n"
        )
    return "".join(lines)


def write_corpus(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Write `count` configs under `folder/config/` (same files for the same seed)."""
    rng = random.Random(seed)
    target = folder / "config"
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = target / f"train_{number:04d}.py"
        path.write_text(make_config(rng, path.stem), encoding="utf-8")
        paths.append(path)
    return paths


def best_times(actions: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """The shortest wall time of each action, in seconds, over `repeat` rounds that run every
    action in turn (so that a busy spell on the machine hits all tools alike)."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def run_quietly(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def gptlint_in_process(folder: Path) -> None:
    from gptlint.command.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["--exit-zero", str(folder)])
    if code != 0:
        raise SystemExit(f"gptlint exited {code} on the corpus")


def fixit_command() -> list[str] | None:
    """How to run Fixit from this environment, or None if it is not installed."""
    script = Path(sys.executable).with_name("fixit")
    if script.exists():
        return [str(script)]
    found = shutil.which("fixit")
    return [found] if found else None


GOAL_RATIO = 20.0
"""Issue 11's goal: gptlint, run the way pre-commit and CI run it, at least 20x Fixit's speed
on a corpus of 218 real configs."""


def time_folder(folder: Path, repeat: int) -> dict[str, float]:
    """Time every tool on the configs in `folder` (run from the folder above it)."""
    root = folder.parent
    command = [sys.executable, "-m", "gptlint", "--exit-zero", str(folder)]
    serial = [*command[:3], "--jobs", "1", *command[3:]]
    actions: dict[str, Callable[[], object]] = {
        "gptlint (subprocess)": lambda: run_quietly(command, root),
        "gptlint -j 1 (subprocess)": lambda: run_quietly(serial, root),
        "gptlint (in-process)": lambda: gptlint_in_process(folder),
    }
    fixit = fixit_command()
    if fixit is not None:
        fixit_lint = [*fixit, "lint", str(folder)]
        actions["fixit lint (subprocess)"] = lambda: run_quietly(fixit_lint, root)
    actions["python + import libcst"] = lambda: run_quietly(
        [sys.executable, "-c", "import libcst"], root
    )
    gptlint_in_process(folder)  # warm-up: imports, caches
    load = os.getloadavg()[0]
    seconds = best_times(actions, repeat)
    print(f"{folder}: load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--files", type=int, nargs="*", default=[218, 1000], help="corpus sizes to generate"
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=[],
        help="a folder of configs to time as well (your own, or real ones gathered elsewhere)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the generated corpora here, keep them")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if fixit_command() is None:
        print("fixit is not installed: no comparison")

    results: list[tuple[str, int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for files in args.files:
            root = (args.keep or Path(scratch)) / f"corpus-{files}"
            write_corpus(root, files, args.seed)
            results.append(("generated", files, time_folder(root / "config", args.repeat)))
    for folder in args.corpus:
        files = sum(1 for _ in folder.resolve().rglob("*.py"))
        results.append((folder.name, files, time_folder(folder.resolve(), args.repeat)))

    header = f"{'tool':<26}{'corpus':<11}{'files':>6}{'seconds':>10}{'files/s':>9}{'ratio':>8}"
    print(f"\n{header}  goal")
    for corpus, files, seconds in results:
        fixit_seconds = seconds.get("fixit lint (subprocess)")
        for tool, took in seconds.items():
            ratio = f"{fixit_seconds / took:.1f}x" if fixit_seconds else "-"
            goal = f">= {GOAL_RATIO:.0f}x" if tool == "gptlint (subprocess)" else ""
            print(
                f"{tool:<26}{corpus[:10]:<11}{files:>6}{took:>10.3f}{files / took:>9.0f}"
                f"{ratio:>8}  {goal}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
