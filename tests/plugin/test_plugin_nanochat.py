"""nanochat run scripts in the plugin: `pytest --gpt-configs runs/speedrun.sh` (or `runs/`, or
a positional `.sh`) makes each script a `lint` item (gptlint's GPT6xx rules) and a
`memory[<gpu>-line<N>]` item per base_train and chat_sft invocation, reported in the same
table, failure text and JSON report as nanoGPT configs.

The glue is tested over a copy of tests/data/nanochat (a nanochat-like checkout) with a fake
engine: a conftest that puts a `pytest_gptcfg.engine.chatcheck` in place whose verdict is
gptlint's own estimate of the step (so the figures are the ones GPT606 reports), and that
records what the glue passed it in the result's notes. These runs import no real engine code
beyond `check.import_torch`, so they run in this process (torch imported here first)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.facts.kinds import AttentionKernel, MemoryMode
from gptlint.runmodel.chatestimate import CHAT_BREAKDOWN_LABELS
from gptlint.runmodel.chatrun import ChatShape, ChatStep
from pytest_gptcfg import chatreport, report
from pytest_gptcfg.results import MemoryResult

torch = pytest.importorskip("torch")
import pytest_gptcfg.engine.check  # noqa: E402,F401  imported once, before the in-process runs

pytest_plugins = ["pytester"]

DATA = Path(__file__).parents[1] / "data" / "nanochat"
GiB = 1024**3
SVG = "http://www.w3.org/2000/svg"

FAKE_ENGINE = '''
"""A fake pytest_gptcfg.engine.chatcheck: gptlint's estimate of the step as the verdict."""
import sys
import types

import pytest_gptcfg.engine as package
from gptlint.facts.kinds import MemoryMode
from gptlint.runmodel.chatestimate import estimate_chat_memory, largest_device_batch
from pytest_gptcfg.results import MemoryResult, fits_budget

NAME = "pytest_gptcfg.engine.chatcheck"


class ChatModelError(Exception):
    pass


def check_chat_memory(step, checkout, profile, budget_bytes, mode="auto", device_index=0,
                      snapshot=None):
    if (checkout / "FAKE_MODEL_ERROR").exists():
        raise ChatModelError(f"{checkout}/nanochat/gpt.py: no module named 'kernels'")
    estimate = estimate_chat_memory(step, profile)
    context = estimate.terms["cuda_context"]
    reserved = estimate.total - context
    return MemoryResult(
        mode=MemoryMode.ESTIMATED,
        fits=fits_budget(reserved, context, budget_bytes),
        peak_allocated_bytes=estimate.tensors,
        peak_reserved_bytes=reserved,
        context_bytes=context,
        budget_bytes=budget_bytes,
        breakdown=dict(estimate.terms),
        largest_tensors=[],
        oom=False,
        torch_version="fake",
        device_name=f"{profile.label} (simulated)",
        attention_kernel=estimate.attention.full,
        notes=[f"fake engine: mode {mode}, device {device_index}, snapshot {snapshot}, "
               f"checkout {checkout.name}, world {step.world_size}"],
        compiled=step.compiled,
    )


def find_max_device_batch(step, checkout, profile, budget_bytes, known=None):
    assert known is not None and not known.fits or known.fits
    return largest_device_batch(step, profile, budget_bytes) or 0


fake = types.ModuleType(NAME)
fake.__dict__.update(ChatModelError=ChatModelError, check_chat_memory=check_chat_memory,
                     find_max_device_batch=find_max_device_batch)
saved = (sys.modules.get(NAME), package.__dict__.get("chatcheck"))


def pytest_configure(config):
    sys.modules[NAME] = fake
    package.chatcheck = fake


def pytest_unconfigure(config):
    module, attribute = saved
    if module is None:
        sys.modules.pop(NAME, None)
    else:
        sys.modules[NAME] = module
    if attribute is None:
        del package.chatcheck
    else:
        package.chatcheck = attribute
'''

DEPLOY = "#!/bin/bash\n# not nanochat: copies the site\nrsync -a site/ host:/srv/site/\n"

UNKNOWN_DEPTH = """\
#!/bin/bash
python -m scripts.base_train --depth=$DEPTH --device-batch-size=4
"""

SMALL = """\
#!/bin/bash
export NANOCHAT_DTYPE=float32
python -m scripts.base_train --depth=2 --head-dim=64 --window-pattern=L --max-seq-len=256 \\
    --device-batch-size=4 --total-batch-size=2048
python -m scripts.chat_sft --device-batch-size=2
"""


@pytest.fixture
def checkout(project):
    """The project folder holding a copy of the nanochat-like checkout, with the fake engine."""
    shutil.copytree(DATA, project.path, dirs_exist_ok=True)
    (project.path / "conftest.py").write_text(FAKE_ENGINE, encoding="utf-8")
    return project


def write(project, name: str, text: str) -> Path:
    path = project.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(" ")]


# --- collection ----------------------------------------------------------------------------


def test_a_named_run_script_gives_lint_and_one_memory_item_per_invocation(checkout):
    result = checkout.run(
        "--collect-only", "-q", "--gpt-configs", "runs/speedrun.sh", "--gpt-gpu", "rtx4090"
    )
    assert collected(result) == [
        "runs/speedrun.sh::lint",
        "runs/speedrun.sh::memory[rtx4090-line8]",
        "runs/speedrun.sh::memory[rtx4090-line9]",
        "runs/speedrun.sh::memory[rtx4090-line10]",
    ]


def test_a_folder_collects_only_the_scripts_that_run_nanochat(checkout):
    write(checkout, "runs/deploy.sh", DEPLOY)
    result = checkout.run("--collect-only", "-q", "--gpt-configs", "runs")
    files = sorted({line.split("::")[0] for line in collected(result)})
    assert files == ["runs/miniseries.sh", "runs/runcpu.sh", "runs/speedrun.sh"]


def test_a_folder_of_no_nanochat_scripts_says_none_was_found(checkout):
    write(checkout, "ops/deploy.sh", DEPLOY)
    result = checkout.run("-q", "--gpt-configs", "ops")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["gptcfg: ops: no config files found"])


def test_run_scripts_and_configs_together_named_or_positional(checkout):
    checkout.config("train_a.py")
    expected = [
        "runs/runcpu.sh::lint",
        "runs/runcpu.sh::memory[rtx4070-line6]",
        "runs/runcpu.sh::memory[rtx4070-line13]",
        "runs/runcpu.sh::memory[rtx4070-line14]",
        "config/train_a.py::lint",
        "config/train_a.py::memory[rtx4070]",
    ]
    named = checkout.run(
        "--collect-only", "-q", "--gpt-configs", "runs/runcpu.sh", "--gpt-configs", "config"
    )
    assert collected(named) == expected
    positional = checkout.run(
        "--collect-only", "-q", "--gpt-configs", "config/train_a.py", "runs/runcpu.sh"
    )
    assert sorted(collected(positional)) == sorted(expected)


def test_k_selects_one_invocation(checkout):
    result = checkout.run(
        "-q", "--gpt-configs", "runs/speedrun.sh", "--gpt-gpu", "rtx4090", "-k", "line8"
    )
    result.assert_outcomes(failed=1, deselected=3)


def test_collecting_run_scripts_loads_no_engine_and_no_torch(tmp_path):
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    code = textwrap.dedent(
        """
        import sys
        import pytest

        def check():
            engine = [m for m in sys.modules if m.startswith("pytest_gptcfg.engine")]
            torch = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
            assert not engine and not torch, (engine, torch[:5])

        class Check:
            def pytest_collection_finish(self, session):
                assert [item.name for item in session.items][:2] == [
                    "lint", "memory[rtx4070-line8]"]
                check()

        code = pytest.main(
            ["-p", "pytest_gptcfg.plugin", "-p", "no:cacheprovider", "--collect-only", "-q",
             "--gpt-configs", "runs/speedrun.sh"],
            plugins=[Check()],
        )
        check()
        raise SystemExit(code)
        """
    )
    src = Path(report.__file__).resolve().parents[1]
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the lint item -------------------------------------------------------------------------


def test_lint_fails_on_gpt6xx_errors_with_the_findings_and_the_fix(checkout):
    result = checkout.run(
        "-q", "--gpt-configs", "runs/speedrun.sh", "--gpt-gpu", "rtx4090", "-k", "lint"
    )
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "*6 gptlint findings (2 errors, 3 warnings, 1 info) in runs/speedrun.sh:",
            "  runs/speedrun.sh:8:106: GPT606 base_train (line 8) needs an estimated *",
            "  runs/speedrun.sh:10:1: GPT605 chat_sft (line 10): device_batch_size=16 inherited*",
            "  fix with: gptlint --fix --unsafe-fixes runs/speedrun.sh",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_lint_warnings_pass_and_go_to_the_summary(checkout):
    result = checkout.run("-q", "--gpt-configs", "runs/miniseries.sh", "-k", "lint")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["gptlint diagnostics:", "  runs/miniseries.sh:10:*: GPT602 base_train (line 10, *"]
    )


def test_a_script_outside_any_checkout_says_so(checkout):
    write(checkout, "elsewhere/train.sh", UNKNOWN_DEPTH.replace("$DEPTH", "4"))
    shutil.rmtree(checkout.path / "scripts")
    result = checkout.run("-q", "--gpt-configs", "elsewhere/train.sh")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "elsewhere/train.sh: runs nanochat's base_train, but no nanochat checkout *",
            "elsewhere/train.sh:2: memory check not run: no nanochat checkout (a folder with "
            "scripts/base_train.py and nanochat/gpt.py) is at or above elsewhere/train.sh*",
        ]
    )


# --- the memory items ----------------------------------------------------------------------


def test_a_base_train_that_does_not_fit_fails_with_the_largest_device_batch(checkout):
    result = checkout.run(
        "-q", "--gpt-configs", "runs/speedrun.sh", "--gpt-gpu", "rtx4090", "-k", "line8"
    )
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "runs/speedrun.sh:8: base_train does not fit NVIDIA GeForce RTX 4090 (24 GB) "
            "(compiled step estimated by gptlint's analytical model, no step run; torch fake)",
            "  peak * GiB > budget 23.99 GiB per GPU: * reserved (* allocated) + * CUDA context",
            "  model: depth 24, model_dim 1536, n_head 12, vocab_size 32768 (padded to 32768), "
            "max_seq_len 2048, window pattern SSSL: *B params",
            "  step: device batch 16 x max_seq_len 2048, world size 8, total batch size "
            "1,048,576 tokens (4 micro-steps), bfloat16, fp8, compile on, attention *",
            "  at the peak:",
            "    parameters *GiB",
            "    gradients *GiB",
            "    AdamW state *GiB",
            "    Muon state *GiB",
            "*",
            "  estimated: --device-batch-size=4 fits (base_train recomputes the gradient "
            "accumulation from the total batch size 1048576: 16 micro-steps); write it on line 8",
            "  note: vocab 32768 from tok_train.py's default *",
        ]
    )
    result.stdout.fnmatch_lines(["runs/speedrun.sh:8 base_train  rtx4090  estimated (compiled)*"])
    assert "Traceback" not in result.stdout.str()


def test_invocations_that_fit_pass_base_eval_as_an_evaluation(checkout):
    write(checkout, "runs/small.sh", SMALL + "python -m scripts.base_eval\n")
    result = checkout.run("--gpt-configs", "runs/small.sh", "-v", "-k", "memory")
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*::memory?rtx4070-line3? PASSED (compiled step estimated: peak * of 11.99 GiB)*",
            "*::memory?rtx4070-line5? PASSED (compiled step estimated: peak * of 11.99 GiB)*",
            "*::memory?rtx4070-line6? PASSED (evaluation estimated: peak * of 11.99 GiB)*",
        ]
    )
    result.stdout.fnmatch_lines(["runs/small.sh:6 base_eval *rtx4070 *estimated (eval) *yes*"])


def test_a_base_eval_that_does_not_fit_says_it_is_an_evaluation(checkout):
    write(checkout, "runs/small.sh", SMALL + "python -m scripts.base_eval --device-batch-size=32\n")
    result = checkout.run(
        *("-q", "--gpt-configs", "runs/small.sh", "-k", "line6"),
        *("--gpt-memory-budget", "2GiB"),
    )
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "runs/small.sh:6: base_eval does not fit * (evaluation estimated by gptlint's*",
            "  evaluation (base_eval: no_grad forwards, no training step): device batch 32 x "
            "max_seq_len 256, world size 1, float32, compile off, attention *",
            "  estimated: --device-batch-size=* fits; write it on line 6",
        ]
    )


def test_an_unknown_shell_variable_fails_saying_which_and_where(checkout):
    write(checkout, "runs/unknown.sh", UNKNOWN_DEPTH)
    result = checkout.run("-q", "--gpt-configs", "runs/unknown.sh", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["runs/unknown.sh:2:30: memory check not run: base_train (line 2) is not checked: *$DEPTH*"]
    )


def test_gpt_set_gives_the_shell_variable(checkout):
    """`--gpt-set DEPTH=2` gives `$DEPTH`, for the lint item (no GPT602) and the memory item
    (checked at depth 2)."""
    write(checkout, "runs/unknown.sh", UNKNOWN_DEPTH)
    result = checkout.run(
        *("-q", "--gpt-configs", "runs/unknown.sh", "--gpt-set", "DEPTH=2"),
        *("--gpt-report", "r.json"),
    )
    result.assert_outcomes(passed=2)
    (record,) = json.loads((checkout.path / "r.json").read_text())["configs"]
    assert record["depth"] == 2


def test_an_unknown_world_size_names_the_plugins_option(checkout):
    result = checkout.run("-q", "--gpt-configs", "runs/miniseries.sh", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*world size is not known*(--gpt-world-size N gives it)"])


def test_the_world_size_option_overrides_the_launcher(checkout):
    result = checkout.run(
        *("-q", "--gpt-configs", "runs/speedrun.sh", "-k", "line8", "--gpt-gpu", "h100-80gb"),
        *("--gpt-world-size", "2", "--gpt-report", "r.json"),
    )
    (record,) = json.loads((checkout.path / "r.json").read_text())["configs"]
    assert record["world_size"] == 2
    assert record["grad_accum_steps"] == 1048576 // (16 * 2048 * 2)
    assert "world 2" in record["notes"][-1]
    result.assert_outcomes(passed=1, deselected=3)


def test_the_json_report_has_a_row_per_invocation(checkout):
    result = checkout.run(
        *("-q", "--gpt-configs", "runs/speedrun.sh", "--gpt-gpu", "rtx4090"),
        *("-k", "memory", "--gpt-report", "r.json"),
    )
    result.assert_outcomes(passed=1, failed=2, deselected=1)
    rows = json.loads((checkout.path / "r.json").read_text())["configs"]
    assert [(r["path"], r["line"], r["script"], r["fits"]) for r in rows] == [
        ("runs/speedrun.sh", 8, "base_train", False),
        ("runs/speedrun.sh", 9, "base_eval", True),
        ("runs/speedrun.sh", 10, "chat_sft", False),
    ]
    base = rows[0]
    assert base["kind"] == "nanochat"
    assert (base["gpu"], base["mode"], base["fits"]) == ("rtx4090", "estimated", False)
    assert (base["depth"], base["device_batch_size"], base["world_size"]) == (24, 16, 8)
    assert (base["total_batch_size"], base["grad_accum_steps"]) == (1048576, 4)
    assert base["tokens_per_iter"] == 1048576
    assert base["max_device_batch_size"] == 4
    assert set(base["breakdown"]) == set(CHAT_BREAKDOWN_LABELS)
    assert base["peak_reserved_bytes"] + base["context_bytes"] > base["budget_bytes"]
    assert (rows[1]["eval_only"], rows[1]["step"], rows[1]["max_device_batch_size"]) == (
        True,
        "eval",
        16,
    )
    assert rows[2]["notes"][-2].startswith("total_batch_size=1048576 inherited from")


def test_snapshots_are_named_after_the_script_line_and_gpu(checkout):
    result = checkout.run(
        *("-q", "--gpt-configs", "runs/speedrun.sh", "--gpt-gpu", "rtx4090", "-k", "line8"),
        *("--gpt-snapshot", "snaps"),
    )
    result.assert_outcomes(failed=1, deselected=3)
    snapshot = checkout.path / "snaps" / "runs__speedrun.line8.rtx4090.pickle"
    result.stdout.fnmatch_lines([f"*fake engine: mode simulate, device 0, snapshot {snapshot}*"])


def test_cuda_mode_without_cuda_fails_as_for_configs(checkout):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    result = checkout.run(
        "-q", "--gpt-configs", "runs/speedrun.sh", "-k", "line8", "--gpt-mode", "cuda"
    )
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(["--gpt-mode=cuda, but CUDA is not available*"])


def test_a_checkout_the_engine_cannot_build_fails_without_a_traceback(checkout):
    (checkout.path / "FAKE_MODEL_ERROR").write_text("")
    result = checkout.run("-q", "--gpt-configs", "runs/speedrun.sh", "-k", "line8")
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(
        ["runs/speedrun.sh:8: memory check not run: */nanochat/gpt.py: no module named 'kernels'"]
    )
    assert "Traceback" not in result.stdout.str()


def test_under_xdist_each_worker_checks_invocations_and_the_controller_reports(checkout):
    pytest.importorskip("xdist")
    write(checkout, "runs/small.sh", SMALL)
    result = checkout.run_subprocess(
        "-n", "2", "--gpt-configs", "runs/small.sh", "--gpt-report", "r.json"
    )
    result.assert_outcomes(passed=3)
    rows = json.loads((checkout.path / "r.json").read_text())["configs"]
    assert sorted(r["line"] for r in rows) == [3, 5]
    result.stdout.fnmatch_lines(["*gptcfg summary*", "runs/small.sh:3 base_train *estimated*"])


# --- report.py and chatreport.py on hand-built results ---------------------------------------

RTX4090 = get_profile("rtx4090")
STEP = ChatStep(
    "base_train",
    ChatShape(24, 1536, 12, 12, 32768, 2048, "SSSL"),
    device_batch_size=16,
    world_size=8,
    total_batch_size=1048576,
    grad_accum_steps=4,
    dtype="bfloat16",
    fp8=False,
    compiled=True,
    training=True,
    notes=("from the derivation",),
)
RESULT = MemoryResult(
    mode=MemoryMode.SIMULATED,
    fits=False,
    peak_allocated_bytes=27 * GiB,
    peak_reserved_bytes=28 * GiB,
    context_bytes=GiB // 2,
    budget_bytes=RTX4090.usable_bytes,
    breakdown={key: GiB for key in CHAT_BREAKDOWN_LABELS},
    largest_tensors=[("float32 16x2048x32768 logits", 4 * GiB)],
    oom=False,
    torch_version="2.13.0",
    device_name="NVIDIA GeForce RTX 4090 (24 GB) (simulated)",
    attention_kernel=AttentionKernel.EFFICIENT,
    notes=["from the engine"],
    compiled=True,
    params=(1_380_000_000, 1_380_000_000),
)


def test_the_failure_text_lists_every_nanochat_term_in_label_order():
    text = chatreport.chat_failure_text("runs/s.sh", 8, RTX4090, STEP, RESULT, 4)
    lines = text.splitlines()
    start = lines.index("  at the peak:")
    labels = [line.split("  ")[2].strip() for line in lines[start + 1 : start + 13]]
    assert labels == list(CHAT_BREAKDOWN_LABELS.values())
    assert lines[0] == (
        "runs/s.sh:8: base_train does not fit NVIDIA GeForce RTX 4090 (24 GB) (compiled step "
        "simulated on fake tensors, no GPU used; torch 2.13.0)"
    )
    assert "window pattern SSSL: 1.38B params" in lines[2]
    assert "       4.00 GiB  float32 16x2048x32768 logits" in lines
    assert lines[-2:] == ["  note: from the derivation", "  note: from the engine"]


def test_the_suggestion_when_no_device_batch_fits():
    assert chatreport.chat_suggestion(STEP, 8, 0, "simulated") == (
        "simulated: no --device-batch-size on nanochat's ladder (32..1) fits: a smaller "
        "--depth or --max-seq-len, or a GPU with more memory, is needed"
    )


def test_nanochat_and_nanogpt_rows_share_the_table():
    chat = chatreport.chat_record("runs/s.sh", 8, "base_train", RTX4090, RESULT.budget_bytes,
                                  STEP, RESULT, 4)  # fmt: skip
    error = chatreport.chat_record(
        "runs/s.sh", 10, "chat_sft", RTX4090, RESULT.budget_bytes, error="x"
    )
    assert json.loads(json.dumps(chat))["breakdown"]["muon_state"] == GiB
    header, first, second = report.table([error, chat])
    assert header.split()[:2] == ["config", "gpu"]
    assert first.split() == [
        "runs/s.sh:8", "base_train", "rtx4090", "simulated", "(compiled)", "1.38B",
        "1,048,576", "28.50", "GiB", "23.99", "GiB", "NO", "4",
    ]  # fmt: skip
    assert second.split()[:3] == ["runs/s.sh:10", "chat_sft", "rtx4090"]
    assert second.split()[-2:] == ["error", "-"]


def test_two_invocations_on_one_line_get_two_items(checkout):
    chained = "python -m scripts.base_train --depth=2 && python -m scripts.chat_sft\n"
    write(checkout, "runs/chained.sh", chained)
    result = checkout.run("--collect-only", "-q", "--gpt-configs", "runs/chained.sh")
    assert collected(result) == [
        "runs/chained.sh::lint",
        "runs/chained.sh::memory[rtx4070-line1]",
        "runs/chained.sh::memory[rtx4070-line1-2]",
    ]


def test_a_fifo_in_a_runs_folder_is_reported_not_skipped(checkout):
    os.mkfifo(checkout.path / "runs" / "pipe.sh")
    result = checkout.run("-q", "--gpt-configs", "runs", "-k", "pipe")
    result.assert_outcomes(failed=1, deselected=10)
    result.stdout.fnmatch_lines(["runs/pipe.sh: cannot read file: not a regular file (a FIFO)*"])


# --- the real engine (pytest_gptcfg.engine.chatcheck), in a child process each ----------------

EVAL_OVER_BUDGET = SMALL + "python -m scripts.base_eval --device-batch-size=4\n"
"""Measured once (rtx4070's modelled context): base_eval simulates ~0.94 GiB at device batch 4
and ~0.75 GiB at 2, so an 870 MiB budget fails it with 2 as the largest batch that fits."""


@pytest.fixture
def real_checkout(project):
    """The project folder holding a copy of the nanochat-like checkout, with the real engine."""
    shutil.copytree(DATA, project.path, dirs_exist_ok=True)
    write(project, "runs/small.sh", EVAL_OVER_BUDGET)
    return project


@pytest.mark.slow
def test_the_real_engine_fails_an_evaluation_over_budget_with_the_batch_that_fits(real_checkout):
    result = real_checkout.run_subprocess(
        *("-q", "--gpt-configs", "runs/small.sh", "-k", "line3 or line6"),
        *("--gpt-memory-budget", "870MiB", "--gpt-report", "r.json"),
    )
    result.assert_outcomes(failed=2, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "runs/small.sh:6: base_eval does not fit NVIDIA GeForce RTX 4070 (12 GB) (evaluation "
            "simulated on fake tensors, no GPU used; torch *)",
            "  peak * GiB > budget 0.85 GiB per GPU: *",
            "  evaluation (base_eval: no_grad forwards, no training step): device batch 4 x "
            "max_seq_len 256, world size 1, float32, compile off, attention *",
            "  at the peak:",
            "    parameters *",
            "*",
            "  simulated: --device-batch-size=2 fits; write it on line 6",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    train, evaluation = json.loads((real_checkout.path / "r.json").read_text())["configs"]
    assert (evaluation["mode"], evaluation["step"], evaluation["fits"]) == (
        "simulated",
        "eval",
        False,
    )
    assert evaluation["max_device_batch_size"] == 2
    assert evaluation["breakdown"]["logits_and_loss"] > evaluation["breakdown"]["parameters"]
    # base_train compiles: its verdict is the compiled step's (simulated, or gptlint's estimate
    # of it where it cannot be had), never the eager figure
    assert (train["line"], train["step"], train["compile"]) == (3, "compiled", True)
    assert train["mode"] in ("simulated", "estimated")


@pytest.mark.slow
def test_the_real_engine_writes_a_memory_viz_snapshot_and_chart_of_an_item_over_budget(
    real_checkout,
):
    result = real_checkout.run_subprocess(
        *("-q", "--gpt-configs", "runs/small.sh", "-k", "line6"),
        *("--gpt-memory-budget", "870MiB", "--gpt-snapshot", "snaps"),
    )
    result.assert_outcomes(failed=1, deselected=3)
    snapshot = real_checkout.path / "snaps" / "runs__small.line6.rtx4070.pickle"
    chart = snapshot.with_suffix(".svg")
    result.stdout.fnmatch_lines(
        [f"  note: memory snapshot: {snapshot} (open it at *memory_viz); breakdown chart: {chart}"]
    )
    with snapshot.open("rb") as f:
        data = pickle.load(f)
    segments, (trace,) = data["segments"], data["device_traces"]
    assert segments and all(s["is_expandable"] for s in segments), "expandable segments"
    for segment in segments:
        assert sum(b["size"] for b in segment["blocks"]) == segment["total_size"]
        assert segment["blocks"][0]["address"] == segment["address"]
    actions = {event["action"] for event in trace}
    assert {"segment_map", "alloc", "free_requested", "free_completed"} <= actions
    assert not actions & {"segment_alloc", "segment_free"}, "pages are mapped, not cudaMalloc'd"
    frames = {frame["filename"] for event in trace for frame in event["frames"]}
    assert str(real_checkout.path / "nanochat" / "gpt.py") in frames, "the checkout's own code"
    text = " ".join(t.text or "" for t in ET.parse(chart).getroot().iter(f"{{{SVG}}}text"))
    assert "Logits and loss" in text and "does not fit" in text
    assert {p.name for p in snapshot.parent.iterdir()} == {chart.name, snapshot.name}


@pytest.mark.slow
def test_the_real_engine_passes_a_script_that_fits(real_checkout):
    result = real_checkout.run_subprocess("-v", "--gpt-configs", "runs/small.sh")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*::memory?rtx4070-line6? PASSED (evaluation simulated: peak * of 11.99 GiB)*"]
    )


@pytest.mark.slow
def test_the_real_engine_names_a_checkout_it_cannot_import(real_checkout):
    gpt = real_checkout.path / "nanochat" / "gpt.py"
    gpt.write_text("import kernels_hub_missing\n" + gpt.read_text(), encoding="utf-8")
    result = real_checkout.run_subprocess("-q", "--gpt-configs", "runs/small.sh", "-k", "line6")
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "runs/small.sh:6: memory check not run: nanochat/gpt.py:1 imports "
            "kernels_hub_missing, which is not installed*"
        ]
    )
    assert "Traceback" not in result.stdout.str()
