"""The memory item end to end: the real plugin and engine, simulated (no GPU on CI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gptlint.runmodel.trainingrun import count_params

torch = pytest.importorskip("torch")

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # each scenario is a pytest run that imports torch

DATA = Path(__file__).parent / "data"
MiB = 1024**2


# Runs that reach torch use a subprocess each: pytester's in-process runs drop the modules first
# imported inside them, and torch cannot be imported twice in one process. Tests that assert
# different things about one scenario share its run (a module-scoped fixture of `shared_run`).


def report(project, *args: str) -> tuple[pytest.RunResult, dict]:
    """A run with `--gpt-report`, and the report it wrote."""
    result = project.run_subprocess("--gpt-configs", "config", "--gpt-report", "report.json", *args)
    return result, json.loads((project.path / "report.json").read_text())


@pytest.fixture(scope="module")
def fitting_run(shared_run):
    """The tiny config with the defaults, which fits: `-v` for the verdicts, and
    `--gpt-snapshot`, which writes nothing for a config that fits."""
    return shared_run(
        "fits",
        lambda project: project.config("train_tiny.py"),
        *("--gpt-configs", "config", "-v", "--gpt-snapshot", "snaps"),
    )


@pytest.fixture(scope="module")
def over_budget_run(shared_run):
    """The tiny config at batch 64 against a 1 GiB budget, which it does not fit, with the
    JSON report and a snapshot."""
    return shared_run(
        "over-budget",
        lambda project: project.config("train_tiny.py"),
        *("--gpt-configs", "config", "-k", "memory", "--gpt-memory-budget", "1GiB"),
        *("--gpt-set", "batch_size=64", "--gpt-report", "report.json", "--gpt-snapshot", "snaps"),
    )


def test_a_config_that_fits_passes_and_the_summary_says_simulated(fitting_run):
    result = fitting_run.result
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "config/train_tiny.py::memory?rtx4070? PASSED"
            " (* step simulated: peak * GiB of 11.99 GiB)*",
            "*= gptcfg summary =*",
            "config *gpu *mode *params *tokens/iter *peak *budget *fits *max batch",
            "config/train_tiny.py *rtx4070 *simulated *3.32M *256 *GiB *11.99 GiB *yes *-",
        ]
    )


def test_the_json_report_has_one_record_per_config(project):
    project.config("train_tiny.py")
    result, data = report(project)
    result.assert_outcomes(passed=2)
    (record,) = data["configs"]
    assert record["path"] == "config/train_tiny.py"
    assert (record["gpu"], record["mode"]) == ("rtx4070", "simulated")
    assert record["torch_version"] == torch.__version__
    assert record["params"] == count_params(2, 64, 50304, 32, False)
    assert record["params_total"] == count_params(2, 64, 50304, 32, False, non_embedding=False)
    assert record["tokens_per_iter"] == 4 * 32 * 2
    assert record["budget_bytes"] == 12282 * MiB
    assert record["fits"] is True
    assert 0 < record["peak_allocated_bytes"] <= record["peak_reserved_bytes"]
    assert record["max_batch_size"] >= 4
    assert record["error"] is None


def test_gpt_cuda_context_is_the_context_the_simulation_counts(project):
    project.config("train_tiny.py")
    result, data = report(project, "--gpt-cuda-context", "863MiB")
    result.assert_outcomes(passed=2)
    (record,) = data["configs"]
    assert record["context_bytes"] == 863 * MiB
    assert any("modelled 863 MiB (the cuda-context setting)" in n for n in record["notes"])


def test_over_budget_fails_with_peak_breakdown_tensors_and_a_batch_that_fits(over_budget_run):
    result = over_budget_run.result
    data = json.loads((over_budget_run.path / "report.json").read_text())
    result.assert_outcomes(failed=1, deselected=1)
    (record,) = data["configs"]
    assert record["fits"] is False and 1 <= record["max_batch_size"] < 64
    out = result.stdout.str()
    assert "Traceback" not in out and "def runtest" not in out
    result.stdout.fnmatch_lines(
        [
            "config/train_tiny.py does not fit NVIDIA GeForce RTX 4070 (12 GB)"
            " (* step simulated on fake tensors, no GPU used; torch *)",
            "  peak * GiB > budget 1.00 GiB: * reserved (* allocated) + * CUDA context*",
            "  model (scratch): n_layer 2, n_head 2, n_embd 64, block_size 32, vocab_size 50304 "
            "(no data/tiny/meta.pkl: nanoGPT's default), bias False: 3.32M params",
            "  step: batch_size 64 x block_size 32, gradient_accumulation_steps 2 "
            "(4,096 tokens/iter)*",
            "  at the peak:",
            "    parameters *GiB",
            "    gradients *GiB",
            "    AdamW state *GiB",
            "    activations *GiB",
            "    logits and loss *GiB",
            "  largest tensors:",
            "*fits: batch_size = *, gradient_accumulation_steps = * (same 4,096 tokens/iter); "
            "try it with --gpt-set batch_size=* --gpt-set gradient_accumulation_steps=*",
        ]
    )
    result.stdout.fnmatch_lines(["config/train_tiny.py *simulated *NO *"])


def test_gpt_snapshot_leaves_a_memory_viz_snapshot_and_chart_for_failing_configs(
    over_budget_run,
):
    import pickle

    result = over_budget_run.result
    result.assert_outcomes(failed=1, deselected=1)
    written = sorted(p.name for p in (over_budget_run.path / "snaps").iterdir())
    assert written == ["config__train_tiny.rtx4070.pickle", "config__train_tiny.rtx4070.svg"]
    snapshot = pickle.loads((over_budget_run.path / "snaps" / written[0]).read_bytes())
    assert snapshot["segments"] and snapshot["device_traces"][0]
    result.stdout.fnmatch_lines(["  note: memory snapshot: *config__train_tiny.rtx4070.pickle*"])


def test_gpt_snapshot_writes_nothing_for_configs_that_fit(fitting_run):
    fitting_run.result.assert_outcomes(passed=2)
    assert list((fitting_run.path / "snaps").iterdir()) == []


def test_gpt_set_overrides_follow_nanogpts_rules(project):
    project.config("train_tiny.py")
    result, data = report(
        project,
        "-k",
        "memory",
        "--gpt-set",
        "batch_size=8",
        "--gpt-set",
        "block_size=16",
        "--gpt-memory-budget",
        "1GiB",
    )
    result.assert_outcomes(passed=1, deselected=1)
    assert data["configs"][0]["tokens_per_iter"] == 8 * 16 * 2
    # Refused before torch is imported, so this run can stay in-process.
    result = project.run("--gpt-configs", "config", "-k", "memory", "--gpt-set", "batch_size=8.5")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["--gpt-set: override batch_size=8.5: type float does not match*"])


def test_a_key_only_known_at_run_time_fails_until_given_with_gpt_set(project):
    project.config(
        "train_env.py",
        "import os\nbatch_size = int(os.environ['BS'])\n"
        "n_layer = 1\nn_head = 1\nn_embd = 32\nblock_size = 16\ncompile = False\n",
    )
    # Refused before torch is imported, so this run can stay in-process.
    result = project.run("--gpt-configs", "config", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "config/train_env.py: memory check not run: batch_size is not known without running the"
            " config: config/train_env.py:2; give its value with --gpt-set batch_size=VALUE",
        ]
    )
    result.stdout.fnmatch_lines(["config/train_env.py *rtx4070 *- *error *"])
    result = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-set", "batch_size=2"
    )
    result.assert_outcomes(passed=1, deselected=1)


def test_gpt_model_builds_the_projects_own_model(project, monkeypatch):
    monkeypatch.setenv("MODEL_BUILT_LOG", str(project.path / "built.log"))
    shutil.copy(DATA / "model.py", project.path / "model.py")
    project.config("train_tiny.py")
    result = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-model", "model.py"
    )
    result.assert_outcomes(passed=1, deselected=1)
    assert "2x64" in (project.path / "built.log").read_text().split()


def test_resume_checks_the_checkpoints_model(project):
    model_args = {
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 32,
        "block_size": 64,
        "bias": True,
        "vocab_size": 65,
        "dropout": 0.0,
    }
    (project.path / "out").mkdir()
    torch.save(
        {"model": {"w": torch.zeros(2)}, "model_args": model_args}, project.path / "out" / "ckpt.pt"
    )
    project.config(
        "train_resume.py",
        "init_from = 'resume'\nblock_size = 64\nbatch_size = 2\ncompile = False\n",
    )
    result, data = report(project, "-k", "memory", "--gpt-memory-budget", "1GiB")
    result.assert_outcomes(passed=1, deselected=1)
    assert data["configs"][0]["params"] == count_params(1, 32, 65, 64, True)


def test_the_gpu_profile_and_the_item_name_agree(project):
    project.config("train_tiny.py")
    result, data = report(project, "-k", "memory", "--gpt-gpu", "t4")
    result.assert_outcomes(passed=1, deselected=1)
    assert data["configs"][0]["gpu"] == "t4"
    assert data["configs"][0]["budget_bytes"] == 15109 * MiB  # what PyTorch reports on a T4
    assert data["configs"][0]["dtype"] == "float16"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_mode_without_cuda_says_so(project):
    project.config("train_tiny.py")
    result = project.run_subprocess("--gpt-configs", "config", "-k", "memory", "--gpt-mode", "cuda")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["--gpt-mode=cuda, but CUDA is not available*"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU to measure")
def test_cuda_mode_measures(project):
    project.config("train_tiny.py")
    result, data = report(project, "-k", "memory", "--gpt-mode", "cuda")
    result.assert_outcomes(passed=1, deselected=1)
    assert data["configs"][0]["mode"] == "measured"


def test_under_xdist_the_controller_gathers_every_workers_results(project):
    pytest.importorskip("xdist")
    project.config("train_a.py")
    project.config("train_b.py")
    result = project.run_subprocess(
        "-n",
        "2",
        "--gpt-configs",
        "config",
        "--gpt-report",
        "r.json",
        "--gpt-memory-budget",
        "1GiB",
    )
    result.assert_outcomes(passed=4)
    data = json.loads((project.path / "r.json").read_text())
    assert sorted(r["path"] for r in data["configs"]) == ["config/train_a.py", "config/train_b.py"]
    result.stdout.fnmatch_lines(["*gptcfg summary*", "config/train_a.py *simulated*"])


SCENARIO = """\
# The user's config from the design doc, with the n_head fix: 12 layers, 8 heads, n_embd 512.
out_dir = 'out-fineweb'
dataset = 'fineweb'
n_layer = 12
n_head = 8
n_embd = 512
dropout = 0.0
batch_size = 16
gradient_accumulation_steps = 32
block_size = 1024
"""


def test_the_design_docs_scenario_end_to_end(project):
    """Batch 16 x 1024 does not fit 12 GB; the verdict says which batch keeps 524,288 tokens."""
    project.config("train_fineweb.py", SCENARIO)
    result, data = report(project, "--gpt-compile", "off")
    (record,) = data["configs"]
    assert record["params"] == count_params(12, 512, 50304, 1024, False)
    assert f"{record['params'] / 1e6:.2f}M" == "63.52M"
    assert record["tokens_per_iter"] == 16 * 32 * 1024
    assert (record["mode"], record["fits"]) == ("simulated", False)
    assert 1 <= record["max_batch_size"] < 16
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ config/train_fineweb.py: lint _*",
            "*config/train_fineweb.py:*: GPT501 estimated peak training memory*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ config/train_fineweb.py: memory?rtx4070? _*",
            "config/train_fineweb.py does not fit NVIDIA GeForce RTX 4070 (12 GB)*",
            "*fits: batch_size = *, gradient_accumulation_steps = * (same 524,288 tokens/iter)*",
        ]
    )


def test_a_forks_slow_attention_model_is_simulated_and_named_in_the_failure(project):
    # a fork: nanoGPT's train.py keys and loop, and beside it a model.py with self.flash = False
    from gptlint.nanogpt.schema import NANOGPT_DEFAULTS

    shutil.copy(DATA / "manual_attention" / "model.py", project.path / "model.py")
    keys = "".join(f"{key} = {value!r}\n" for key, value in NANOGPT_DEFAULTS.items())
    loop = "for _ in range(2):\n    logits, loss = model(X, Y)\n    loss.backward()\n"
    (project.path / "train.py").write_text(keys + "exec(open('configurator.py').read())\n" + loop)
    project.config("train_tiny.py", project.tiny.replace("block_size = 32", "block_size = 256"))
    result = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-memory-budget", "1GiB",
        "--gpt-set", "batch_size=64",
    )  # fmt: skip
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*, attention manual",
            "*note: the model computes attention itself (manual attention, no SDPA kernel)*",
        ]
    )
