"""`gptlint runs/speedrun.sh`: nanochat run scripts on the command line, in folders and on
stdin, reported in every output format at the flag (GPT6xx), with the settings applying, and
`--fix --unsafe-fixes` / `--diff` rewriting `--device-batch-size` byte for byte."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from gptlint.command.cli import main

DATA = Path(__file__).parents[1] / "data" / "nanochat"
REPO = Path(__file__).parents[2]


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A copy of the nanochat-like checkout in tests/data, as the current folder."""
    root = tmp_path / "nanochat"
    shutil.copytree(DATA, root)
    monkeypatch.chdir(root)
    return root


def gptlint(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def located(out: str) -> list[str]:
    """`path:line:col: CODE` of each finding printed."""
    return [line.split(" ", 2)[0] + " " + line.split(" ", 2)[1] for line in _findings(out)]


def _findings(out: str) -> list[str]:
    return [
        line for line in out.splitlines() if line.startswith(("runs/", "/")) and ": GPT" in line
    ]


SPEEDRUN_RTX4090 = [
    "runs/speedrun.sh:8:1: GPT604",
    "runs/speedrun.sh:8:106: GPT606",
    "runs/speedrun.sh:9:1: GPT604",
    "runs/speedrun.sh:10:1: GPT604",
    "runs/speedrun.sh:10:1: GPT605",
    "runs/speedrun.sh:10:1: GPT606",
]


def test_a_named_run_script_is_reported_at_its_flags(checkout, capsys):
    code, out, err = gptlint(capsys, "--gpu", "rtx4090", "runs/speedrun.sh")
    assert (code, err) == (1, "")
    assert located(out) == SPEEDRUN_RTX4090
    memory = next(line for line in _findings(out) if "8:106: GPT606" in line)
    assert "base_train (line 8) needs an estimated " in memory
    assert "per GPU (backward start, device batch 16, world 8), above the 23.99 GiB" in memory
    assert "parameters 3.94 + gradients 3.94 + " in memory
    assert memory.endswith(
        "--device-batch-size=4 fits (base_train recomputes the gradient accumulation from the "
        "total batch size 1048576: 16 micro-steps)"
    )
    assert "  fix: Set --device-batch-size=4 (gptlint --fix --unsafe-fixes)\n" in out
    assert out.endswith("Found 6 problems (2 fixable with `gptlint --fix --unsafe-fixes`).\n")


def test_fp8_on_a_gpu_without_it(checkout, capsys):
    code, out, _ = gptlint(capsys, "--gpu", "a100-40gb", "--select", "GPT603", "runs/speedrun.sh")
    assert code == 1
    assert _findings(out) == [
        "runs/speedrun.sh:8:129: GPT603 base_train (line 8): --fp8 on NVIDIA A100 40GB fails at "
        "the first forward: torch._scaled_mm needs compute capability 8.9+, a100-40gb has 8.0"
    ]


def test_select_ignore_budget_and_gpu_apply(checkout, capsys):
    _, out, _ = gptlint(capsys, "--gpu", "rtx4090", "--select", "GPT606", "runs/speedrun.sh")
    assert located(out) == ["runs/speedrun.sh:8:106: GPT606", "runs/speedrun.sh:10:1: GPT606"]
    _, out, _ = gptlint(capsys, "--gpu", "rtx4090", "--ignore", "GPT604,GPT606", "runs/speedrun.sh")
    assert located(out) == ["runs/speedrun.sh:10:1: GPT605"]
    code, out, _ = gptlint(
        capsys, "--gpu", "rtx4090", "--memory-budget", "200GiB", "--select", "GPT606", "runs/"
    )
    assert (code, located(out)) == (0, [])
    code, out, _ = gptlint(capsys, "--gpu", "h100-80gb", "runs/speedrun.sh")
    assert located(out) == ["runs/speedrun.sh:10:1: GPT605"]  # FA3, fp8, and it fits


def test_world_size_setting_gives_an_unknown_world_size(checkout, capsys):
    _, out, _ = gptlint(capsys, "--select", "GPT602", "runs/miniseries.sh")
    assert "the world size is not known: `${NPROC_PER_NODE:-8}` (line 3)" in out
    assert "(--world-size N gives it)" in out
    _, out, _ = gptlint(capsys, "--select", "GPT602", "--world-size", "8", "runs/miniseries.sh")
    assert "world size" not in out
    assert located(out) == ["runs/miniseries.sh:10:5: GPT602", "runs/miniseries.sh:11:9: GPT602"]
    assert "--depth is not known: the loop variable of `for` (line 4)" in out


def test_a_folder_lints_run_scripts_beside_configs(checkout, capsys):
    (checkout / "runs" / "setup.sh").write_text("#!/bin/bash\npip install uv\n")
    (checkout / "config").mkdir()
    (checkout / "config" / "c.py").write_text("n_layer = 2\n")
    code, out, err = gptlint(capsys, "--gpu", "rtx4090", "--select", "GPT605,GPT606", ".")
    assert (code, err) == (1, "")
    assert located(out) == [
        "runs/runcpu.sh:14:1: GPT605",
        *(line for line in SPEEDRUN_RTX4090 if "GPT60" in line and "GPT604" not in line),
    ]


def test_run_scripts_outside_a_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "runs" / "train.sh"
    script.parent.mkdir()
    script.write_text("torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=12\n")
    (tmp_path / "runs" / "c.py").write_text("n_layer = 2\n")
    code, out, err = gptlint(capsys, "runs")  # found in a folder: not a nanochat script here
    assert (code, err) == (0, "")
    code, out, err = gptlint(capsys, "runs/train.sh")
    assert code == 2
    assert err == (
        "gptlint: error: runs/train.sh: runs nanochat's base_train, but no nanochat checkout (a "
        "folder with scripts/base_train.py and nanochat/gpt.py) is at or above it: its flags' "
        "defaults cannot be read\n"
    )
    assert "Traceback" not in out + err


def test_a_named_script_that_runs_no_nanochat_step_is_clean(checkout, capsys):
    (checkout / "runs" / "setup.sh").write_text("#!/bin/bash\npip install uv\n")
    assert gptlint(capsys, "runs/setup.sh")[0] == 0


def test_an_unreadable_script_is_bad_input(checkout, capsys):
    (checkout / "runs" / "bad.sh").write_bytes(b"python -m scripts.base_train --depth=\xff\n")
    code, _, err = gptlint(capsys, "runs/bad.sh")
    assert code == 2
    assert err == (
        "gptlint: error: runs/bad.sh: cannot read the run script: line 1: byte 0xff is not UTF-8\n"
    )


def test_json_lists_the_fix_as_a_text_edit(checkout, capsys):
    _, out, _ = gptlint(
        capsys,
        "--gpu",
        "rtx4090",
        "--select",
        "GPT606",
        "--output-format",
        "json",
        "runs/speedrun.sh",
    )
    found = json.loads(out)
    assert [(d["code"], d["location"], d["end_location"]) for d in found] == [
        ("GPT606", {"row": 8, "column": 106}, {"row": 8, "column": 128}),
        ("GPT606", {"row": 10, "column": 1}, {"row": 10, "column": 81}),
    ]
    assert [d["fix"]["applicability"] for d in found] == ["unsafe", "unsafe"]
    assert found[0]["fix"]["edits"] == [
        {
            "content": "4",
            "location": {"row": 8, "column": 126},
            "end_location": {"row": 8, "column": 128},
        }
    ]
    assert found[1]["fix"]["edits"] == [
        {
            "content": " --device-batch-size=4",
            "location": {"row": 10, "column": 81},
            "end_location": {"row": 10, "column": 81},
        }
    ]


def test_sarif_and_github(checkout, capsys):
    _, out, _ = gptlint(
        capsys,
        "--gpu",
        "rtx4090",
        "--select",
        "GPT606",
        "--output-format",
        "sarif",
        "runs/speedrun.sh",
    )
    run = json.loads(out)["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == ["GPT606", "GPT606"]
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (8, 106)
    replacement = run["results"][0]["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement["insertedContent"]["text"] == "4"
    assert any(rule["id"] == "GPT606" for rule in run["tool"]["driver"]["rules"])
    _, out, _ = gptlint(
        capsys,
        "--gpu",
        "rtx4090",
        "--select",
        "GPT606",
        "--output-format",
        "github",
        "runs/speedrun.sh",
    )
    assert out.startswith("::error title=gptlint (GPT606),file=runs/speedrun.sh,line=8,col=106,")


SPEEDRUN_FIXED = {
    b"--device-batch-size=16 --fp8": b"--device-batch-size=4 --fp8",
    b"-m scripts.chat_sft -- --run=$WANDB_RUN\n": (
        b"-m scripts.chat_sft -- --run=$WANDB_RUN --device-batch-size=4\n"
    ),
}


def _replaced(data: bytes, replacements: dict[bytes, bytes]) -> bytes:
    for old, new in replacements.items():
        assert data.count(old) == 1
        data = data.replace(old, new)
    return data


def test_unsafe_fix_rewrites_the_device_batch_size_byte_for_byte(checkout, capsys):
    path = checkout / "runs" / "speedrun.sh"
    before = path.read_bytes()
    code, out, _ = gptlint(capsys, "--gpu", "rtx4090", "--select", "GPT606", "--fix", str(path))
    assert (code, path.read_bytes()) == (1, before)  # unsafe: plain --fix leaves it
    code, out, _ = gptlint(
        capsys, "--gpu", "rtx4090", "--select", "GPT606", "--fix", "--unsafe-fixes", str(path)
    )
    assert (code, out) == (0, "Fixed 2 problems. All checks passed!\n")
    assert path.read_bytes() == _replaced(before, SPEEDRUN_FIXED)


def test_fix_keeps_every_other_byte_of_an_odd_script(checkout, capsys):
    script = (
        b"#!/bin/bash\r\n"  # a CR before a newline stays where it is
        b"# \xc3\xa9t\xc3\xa9  run\n"
        b"BS=16\n"
        b"torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- \\\n"
        b"    --depth=24   --device-batch-size '32' \\\n"
        b"    --run=x  # trailing comment\n"
        b"torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --device-batch-size $BS"
    )
    path = checkout / "runs" / "odd.sh"
    path.write_bytes(script)
    code, _, err = gptlint(
        capsys, "--gpu", "a100-40gb", "--select", "GPT606", "--fix", "--unsafe-fixes", str(path)
    )
    assert (code, err) == (0, "")
    assert path.read_bytes() == _replaced(
        script,
        {
            b"--device-batch-size '32'": b"--device-batch-size 8",
            b"--device-batch-size $BS": b"--device-batch-size 8",
        },
    )


def test_diff_of_a_run_script(checkout, capsys):
    path = "runs/speedrun.sh"
    before = Path(path).read_bytes()
    code, out, _ = gptlint(capsys, "--gpu", "rtx4090", "--diff", "--unsafe-fixes", path)
    assert code == 1
    assert Path(path).read_bytes() == before
    assert out.startswith("--- runs/speedrun.sh\n+++ runs/speedrun.sh\n@@ -5,6 +5,6 @@\n")
    assert (
        "\n+torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --run=$WANDB_RUN "
        "--device-batch-size=4\n" in out
    )


def test_stdin_with_a_script_name(checkout, capsys, monkeypatch):
    script = (checkout / "runs" / "speedrun.sh").read_bytes()

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", _Stdin(script))
        return gptlint(capsys, "--gpu", "rtx4090", "--select", "GPT606", *args)

    code, out, _ = run("-", "--stdin-filename", "runs/speedrun.sh")
    assert (code, located(out)) == (
        1,
        ["runs/speedrun.sh:8:106: GPT606", "runs/speedrun.sh:10:1: GPT606"],
    )
    code, out, err = run("-", "--stdin-filename", "runs/speedrun.sh", "--fix", "--unsafe-fixes")
    assert code == 0
    assert out.encode() == _replaced(script, SPEEDRUN_FIXED)
    assert err == "Fixed 2 problems. All checks passed!\n"


class _Stdin:
    def __init__(self, data: bytes) -> None:
        import io

        self.buffer = io.BytesIO(data)


def test_stdin_outside_a_checkout_is_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", _Stdin(b"python -m scripts.base_train --depth=4\n"))
    code, _, err = gptlint(capsys, "-", "--stdin-filename", "x.sh")
    assert code == 2
    assert err.startswith(
        "gptlint: error: x.sh: runs nanochat's base_train, but no nanochat checkout"
    )


def test_a_pre_commit_hook_for_run_scripts():
    hooks = {
        hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    }
    hook = hooks["gptlint-nanochat"]
    assert (hook["entry"], hook["files"]) == ("gptlint", r"(^|/)runs/.*\.sh$")


@pytest.mark.parametrize(
    "line",
    [
        "python -m scripts.base_train --depth=abc",
        "python -m scripts.base_train --depth",
        'python -m scripts.base_train "--depth=4',
        "python -m scripts.base_train $(echo hi) --depth=4",
        "torchrun --nproc_per_node=0 -m scripts.base_train",
        "python -m scripts.base_train --depth=4 --aspect-ratio=1000000000000",
        "python -m scripts.chat_sft --max-seq-len=99999999999999",
        "torchrun -m scripts.base_train",
        "cd x && python -m scripts.base_train --depth=4 &",
        "",
    ],
)
def test_odd_lines_are_findings_never_failures(checkout, capsys, line):
    Path("runs/odd.sh").write_text(line + "\n")
    code, out, err = gptlint(capsys, "--gpu", "a100-40gb", "--unsafe-fixes", "--fix", "runs/odd.sh")
    assert code in (0, 1)
    assert err == ""
    assert "internal error" not in out


def test_a_depth_no_gpu_holds_is_reported_not_modelled(checkout, capsys):
    Path("runs/deep.sh").write_text("python -m scripts.base_train --depth=10000000\n")
    code, out, _ = gptlint(capsys, "runs/deep.sh")
    assert code == 1
    assert _findings(out) == [
        "runs/deep.sh:1:30: GPT601 base_train (line 1) stops: --depth=10000000: over 10000 "
        "layers, a model no GPU holds (gptlint does not model it layer by layer)"
    ]


def test_noqa_in_a_run_script(checkout, capsys):
    """`# noqa: CODE` at the end of a command suppresses that code's findings for it (on a
    command continued with `\\`, the comment stands on its last line); a bare `# noqa` all of
    them; a `#` inside quotes or within a word is no comment."""
    speedrun = checkout / "runs" / "speedrun.sh"
    lines = speedrun.read_text().split("\n")
    lines[7] = lines[7].replace("--fp8 ", "\\\n    --fp8 ") + "  # noqa: GPT606, GPT604"
    lines[8] += " # noqa"
    lines[9] += " --run='a # noqa'"
    speedrun.write_text("\n".join(lines))
    code, out, _ = gptlint(capsys, "--gpu", "rtx4090", "runs/speedrun.sh")
    assert code == 1
    assert located(out) == [
        "runs/speedrun.sh:11:1: GPT604",
        "runs/speedrun.sh:11:1: GPT605",
        "runs/speedrun.sh:11:1: GPT606",
    ]


def test_noqa_for_another_code_suppresses_nothing(checkout, capsys):
    speedrun = checkout / "runs" / "speedrun.sh"
    lines = speedrun.read_text().split("\n")
    lines[7] += " # noqa: GPT101"
    speedrun.write_text("\n".join(lines))
    _, out, _ = gptlint(capsys, "--gpu", "rtx4090", "runs/speedrun.sh")
    assert located(out) == SPEEDRUN_RTX4090


def test_set_gives_the_shell_variables_a_run_script_leaves_unknown(checkout, capsys):
    """`--set NAME=VALUE` gives a variable the script never assigns, or assigns what only
    running it gives (`${X:-y}`, a loop's variable, an assignment inside an `if`); the three
    GPT602 of miniseries.sh go, and its base_train is checked as the values say."""
    code, out, _ = gptlint(capsys, "--gpu", "h100-80gb", "runs/miniseries.sh")
    assert [line.split(" ")[1] for line in _findings(out)] == ["GPT602"] * 3
    given = ["--set", "NPROC_PER_NODE=8", "--set", "d=20"]
    given += ["--set", "DEVICE_BATCH_SIZE_ARG=--device-batch-size=64"]
    code, out, _ = gptlint(capsys, "--gpu", "h100-80gb", *given, "runs/miniseries.sh")
    assert code == 1
    (finding,) = _findings(out)
    assert finding.startswith(
        "runs/miniseries.sh:12:9: GPT606 base_train (line 10, inside a `for`)"
    )
    assert "device batch 64, world 8" in finding


def test_set_leaves_a_value_the_script_gives_to_the_script(checkout, capsys):
    """`DEPTH=12` in the script wins over `--set DEPTH=40` (bash's assignment replaces the
    environment's value): the total batch size is d12's."""
    (checkout / "runs" / "d.sh").write_text(
        "DEPTH=12\ntorchrun --nproc_per_node=8 -m scripts.base_train -- --depth=$DEPTH"
        " --device-batch-size=$B\n"
    )
    _, out, _ = gptlint(capsys, "--set", "DEPTH=40", "--set", "B=64", "runs/d.sh")
    assert _findings(out) == [
        "runs/d.sh:2:69: GPT601 base_train (line 2) stops: base_train.py asserts: "
        "total_batch_size (524288) must be a multiple of 1048576. (device batch 64 x seq len "
        "2048 x world 8)"
    ]


def test_set_with_a_name_no_shell_variable_has_is_an_error(checkout, capsys):
    code, _, err = gptlint(capsys, "--set", "1x=3", "runs/speedrun.sh")
    assert code == 2
    assert "--set: '1x=3' is not KEY=VALUE" in err
