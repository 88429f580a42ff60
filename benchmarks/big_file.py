"""How long gptlint takes to lint and to fix one very large or pathological config.

    python benchmarks/big_file.py [--lines 10000 25000 50000] [--repeat 3] [--keep DIR]

Generates a config of each size (seeded, so every run times the same files): a nanoGPT
header block, then assignments of helper names (numbers, strings, arithmetic over earlier
names, dicts, multi-line lists, `;`-joined lines), comments and blank lines, with a few
findings spread through the file: a width the heads do not divide (GPT101, safe fix), int
literals where the default is a float or a bool (GPT203, unsafe fixes), a misspelt key
(GPT201, no fix). Fixing them brings up a memory finding with a fix of its own (GPT501), so
the fix takes two passes.

Times, each in a fresh process (`python -m gptlint`, startup included), best of `--repeat`:

* lint: `gptlint --exit-zero FILE`;
* fix: `gptlint --exit-zero --fix --unsafe-fixes FILE` on a fresh copy of the file (every
  fixable finding is fixed: several passes of fixes, and the lint of the result).

Wall seconds, and the CPU seconds of the process (user + system), which a busy machine
disturbs less.

A second table times pathological configs against goals (the tests in
tests/linter/test_bad_input.py check their answers and only guard against a hang):

* 50,000 lines, one assignment each: lint, best of `--repeat`, goal under 60 s;
* a 50,000-term sum (GPT000: nested too deep), beside a small config: lint, goal under 30 s;
* every nanoGPT key at each extreme value (10 ** 400, float('nan'), ...), linted and fixed
  in this process with every rule: the slowest key, goal under 2 s.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = """\
# a very large generated config: nanoGPT's keys, then many helper values
# $ python train.py config/big.py
out_dir = 'out-big'
eval_interval = 2000
eval_iters = 200
wandb_log = False
dataset = 'openwebtext'
gradient_accumulation_steps = 5 * 8
batch_size = 12
block_size = 1024

# model
n_layer = 12
n_embd = 500  # GPT101: the 12 heads (set below) do not divide it
dropout = 0.0
"""

FINDINGS = (  # placed through the file, one each
    "n_embed = 500  # GPT201: a misspelt key (no fix: n_embd is set too)",
    "weight_decay = 0  # GPT203: the default is a float (fix: 0.0)",
    "compile = 0  # GPT203: the default is a bool (fix: False)",
    "learning_rate = 6e-4",
    "max_iters = 600000",
    "n_head = 12",
)
COMMENTS = ("", "", "", "  # tuned", "  # see the notes above", "  # TODO: check")


def make_config(lines: int, seed: int = 0) -> str:
    """A config of about `lines` lines (see the module docstring)."""
    rng = random.Random(seed)
    out = HEADER.splitlines()
    findings = {int(lines * (k + 1) / (len(FINDINGS) + 1)): f for k, f in enumerate(FINDINGS)}
    helpers: list[str] = []
    number = 0
    while len(out) < lines:
        if findings and len(out) >= min(findings):
            out.append(findings.pop(min(findings)))
            continue
        number += 1
        name = f"aux_{number}"
        roll = rng.random()
        comment = rng.choice(COMMENTS)
        if roll < 0.18:
            out.append(f"# step {number}: {rng.choice(('warm', 'decay', 'eval', 'save'))} notes")
            continue
        if roll < 0.26:
            out.append("")
            continue
        if roll < 0.56 or not helpers:
            out.append(f"{name} = {rng.randint(0, 10**6)}{comment}")
        elif roll < 0.71:
            other = rng.choice(helpers[-200:])
            out.append(f"{name} = {other} * {rng.randint(2, 9)} + {rng.randint(0, 99)}{comment}")
        elif roll < 0.81:
            out.append(f"{name} = '{rng.choice(('train', 'val', 'data/shard'))}-{number}'")
        elif roll < 0.86:
            out.append(f"{name} = dict(a={rng.randint(0, 9)}, b=[1, 2, 3], c='x'){comment}")
        elif roll < 0.93:
            out.append(f"{name} = 1; {name}_b = {rng.randint(0, 99)}; {name}_c = {name} + 1")
        else:
            out += [f"{name} = [", "    1,", f"    {rng.randint(0, 99)},  # item", "]"]
        helpers.append(name)
    out += [findings[k] for k in sorted(findings)]
    return "\n".join(out) + "\n"


def best_time(
    command: list[str], repeat: int, before=None, exit_codes: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    """The shortest wall time and the shortest CPU time of `command` over `repeat` runs
    (`before()` ahead of each), each of which must exit with one of `exit_codes`."""
    walls, cpus = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime)
        if result.returncode not in exit_codes:
            stderr = result.stderr.decode(errors="replace")
            raise SystemExit(f"{' '.join(command)} exited {result.returncode}:\n{stderr}")
    return min(walls), min(cpus)


EXTREMES = (
    "10 ** 30", "10 ** 400", "2 ** 62", "-(10 ** 30)", "1e308", "-1e308", "float('inf')",
    "-float('inf')", "float('nan')", "-0.5",
)  # fmt: skip


def slowest_extreme_value() -> tuple[float, str]:
    """Seconds to lint and fix (every rule, unsafe fixes included) a config setting one key to
    one extreme value, for the slowest pair of every nanoGPT key and `EXTREMES`, in-process."""
    from gptlint.lint.fix import fix_source
    from gptlint.lint.linter import lint_source
    from gptlint.nanogpt.schema import KV_HEAD_KEYS, NANOGPT_DEFAULTS
    from gptlint.settings.table import Settings
    from gptlint.text.decode import decode_source

    every_rule = Settings(select=("ALL",))
    keys = sorted({*NANOGPT_DEFAULTS, "vocab_size", *KV_HEAD_KEYS, "n_embed", "lr"})
    slowest = (0.0, "")
    for value in EXTREMES:
        for key in keys:
            source = decode_source("config/c.py", f"{key} = {value}\nn_head = 7\n".encode())
            start = time.perf_counter()
            lint_source(source, every_rule)
            fix_source(source, every_rule, unsafe=True)
            slowest = max(slowest, (time.perf_counter() - start, f"{key} = {value}"))
    return slowest


def pathological_rows(root: Path, repeat: int) -> list[tuple[str, float, float | None, str]]:
    """(what, wall seconds, CPU seconds or None, goal) of each pathological config."""
    gptlint = [sys.executable, "-m", "gptlint", "--exit-zero"]
    lines = [f"eval_iters = {n}  # line {n + 1}" for n in range(49_998)]
    many = root / "many_lines.py"
    many.write_text("\n".join([*lines, "n_head = 12", "n_embd = 512"]) + "\n")
    deep = root / "deep_sum.py"
    deep.write_text("n_embd = " + "+".join(["1"] * 50_000) + "\n")
    small = root / "small.py"
    small.write_text("n_layer = 12\nn_head = 12\nn_embd = 512\n")
    seconds, which = slowest_extreme_value()
    return [
        (
            "lint 50,000 lines, one assignment each",
            *best_time([*gptlint, str(many)], repeat),
            "< 60 s",
        ),
        (
            "lint a 50,000-term sum (GPT000) beside a small config",
            *best_time([*gptlint, str(deep), str(small)], repeat, exit_codes=(2,)),
            "< 30 s",
        ),
        (f"lint + fix one extreme value, slowest key ({which})", seconds, None, "< 2 s"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 25_000, 50_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the configs here and keep them")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load {load:.1f}, Python {sys.version.split()[0]},"
        f" best of {args.repeat}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text("[project]\nname = 'big'\n")
        for lines in args.lines:
            original = root / f"big_{lines}.py"
            original.write_text(make_config(lines, args.seed))
            target = root / f"big_{lines}_fixed.py"
            gptlint = [sys.executable, "-m", "gptlint", "--exit-zero"]
            lint = best_time([*gptlint, str(original)], args.repeat)
            fix = best_time(
                [*gptlint, "--fix", "--unsafe-fixes", str(target)],
                args.repeat,
                before=lambda o=original, t=target: shutil.copyfile(o, t),
            )
            rows.append((lines, lint, fix))
        pathological = pathological_rows(root, args.repeat)

    print(f"\n{'lines':>8}{'lint s':>10}{'fix s':>10}{'lint cpu s':>12}{'fix cpu s':>11}")
    for lines, (lint_s, lint_cpu), (fix_s, fix_cpu) in rows:
        print(f"{lines:>8}{lint_s:>10.2f}{fix_s:>10.2f}{lint_cpu:>12.2f}{fix_cpu:>11.2f}")

    width = max(len(row[0]) for row in pathological)
    print(f"\n{'pathological config':<{width}}{'s':>8}{'cpu s':>8}  goal")
    for what, wall, cpu, goal in pathological:
        shown_cpu = f"{cpu:>8.2f}" if cpu is not None else f"{'-':>8}"
        print(f"{what:<{width}}{wall:>8.2f}{shown_cpu}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
