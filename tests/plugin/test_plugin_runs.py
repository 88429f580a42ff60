"""Runs train.py starts that are not nanoGPT's training step: an eval-only config's evaluation,
and a fork's own model (its train.py passes more arguments to its GPTConfig).

These runs reach torch, so each uses a subprocess (see test_plugin_memory)."""

from __future__ import annotations

import json
import textwrap

import pytest

torch = pytest.importorskip("torch")

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # each test is a pytest run that imports torch

EVAL_ONLY = "eval_only = True\n"  # after the project's tiny config

FORK_TRAIN_PY = """\
# a fork of nanoGPT's train.py: its model takes one more argument, mlp_mult
out_dir = 'out'
eval_only = False
init_from = 'scratch'
dataset = 'tiny'
gradient_accumulation_steps = 2
batch_size = 4
block_size = 32
n_layer = 2
n_head = 2
n_embd = 64
dropout = 0.0
bias = False
mlp_mult = 4
learning_rate = 6e-4
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
dtype = 'bfloat16'
compile = False
exec(open('configurator.py').read())
model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                  bias=bias, vocab_size=None, dropout=dropout, mlp_mult=mlp_mult)
"""

FORK_MODEL_PY = """\
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    mlp_mult: int = 4


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config.mlp_mult * config.n_embd
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.mlps = nn.ModuleList(
            nn.Sequential(
                nn.Linear(config.n_embd, width, bias=config.bias),
                nn.GELU(),
                nn.Linear(width, config.n_embd, bias=config.bias),
            )
            for _ in range(config.n_layer)
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx, targets=None):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for mlp in self.mlps:
            x = x + mlp(x)
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
"""

FORK_CONFIG = """\
n_embd = 128
batch_size = 8
"""


def records(project, result: pytest.RunResult) -> dict[str, dict]:
    data = json.loads((project.path / "report.json").read_text())
    return {record["path"]: record for record in data["configs"]}


def test_an_eval_only_config_runs_the_evaluation_not_a_training_step(project):
    project.config("train_tiny.py")
    project.config("eval_tiny.py", project.tiny + EVAL_ONLY)
    result = project.run_subprocess(
        "--gpt-configs", "config", "-v", "-k", "memory", "--gpt-report", "report.json"
    )
    result.assert_outcomes(passed=2, deselected=2)
    by_path = records(project, result)
    evaluation, training = by_path["config/eval_tiny.py"], by_path["config/train_tiny.py"]
    assert evaluation["eval_only"] is True and training["eval_only"] is False
    # no gradients, no AdamW state, nothing saved for backward
    assert evaluation["peak_allocated_bytes"] < training["peak_allocated_bytes"]
    assert evaluation["max_batch_size"] > training["max_batch_size"]
    result.stdout.fnmatch_lines(
        [
            "config/eval_tiny.py::memory?rtx4070? PASSED (evaluation simulated: peak *",
            "config/eval_tiny.py *rtx4070 *simulated (eval) *3.32M *",
        ]
    )


def test_a_compiled_evaluation_simulated_eager_is_an_upper_bound_not_an_out_of_memory(project):
    compiled = project.tiny.replace("compile = False\n", "compile = True\n")
    project.config("eval_tiny.py", compiled + EVAL_ONLY)
    result = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-memory-budget", "510MiB"
    )
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "config/eval_tiny.py does not fit *(evaluation simulated *, an upper bound of the"
            " compiled run's peak; *)",
            "  peak * > budget 0.50 GiB: * (the eager evaluation met the cap)",
            "*note: the evaluation exceeds the memory cap eager (the compiled run holds less)",
            "*note: torch.compile not simulated for the evaluation: its forward passes were"
            " simulated eager, an upper bound of the compiled evaluation's peak",
            "config/eval_tiny.py *simulated (eval, upper bound) * NO *",
        ]
    )
    assert "a real run raises CUDA out of memory" not in result.stdout.str()


def test_an_eval_only_config_that_does_not_fit_says_evaluation(project):
    project.config("eval_tiny.py", project.tiny + EVAL_ONLY)
    result = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-memory-budget", "510MiB"
    )
    result.assert_outcomes(failed=1, deselected=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "config/eval_tiny.py does not fit *",
            "  evaluation (eval_only: no_grad forwards, no training step): batch_size 4 x "
            "block_size 32, bfloat16, attention *",
            "    gradients *0.00 GiB",
            "    AdamW state *0.00 GiB",
            "  batch_size 1 does not fit the evaluation either: *",
            "config/eval_tiny.py *simulated (eval) * NO *none",
        ]
    )
    assert "  step:" not in out and "tokens/iter)" not in out and "Traceback" not in out


def fork(project, model: bool = True) -> None:
    (project.path / "train.py").write_text(FORK_TRAIN_PY)
    (project.path / "configurator.py").write_text("# nanoGPT's configurator\n")
    if model:
        (project.path / "model.py").write_text(FORK_MODEL_PY)
    project.config("train_plain.py", FORK_CONFIG)
    project.config("train_wide.py", FORK_CONFIG + "mlp_mult = 32\n")


def test_a_fork_with_its_own_architecture_is_checked_with_its_own_model(project):
    fork(project)
    result = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-report", "report.json"
    )
    result.assert_outcomes(passed=2, deselected=2)
    by_path = records(project, result)
    plain, wide = by_path["config/train_plain.py"], by_path["config/train_wide.py"]
    # nanoGPT's model would give both the same peak: mlp_mult is the fork's own argument
    extra_weights = 2 * 2 * (32 - 4) * 128 * 128 * 4  # n_layer x 2 Linear x widths x fp32
    assert wide["peak_allocated_bytes"] - plain["peak_allocated_bytes"] > 3 * extra_weights


OPTIMIZER_MODEL_PY = (
    FORK_MODEL_PY
    + """
    def configure_optimizers(self, weight_decay, learning_rate, betas, eps, device_type, muon):
        assert (device_type, eps, muon) == ("cuda", 1e-12, False), (device_type, eps, muon)
        return [torch.optim.AdamW(self.parameters(), learning_rate, betas, eps, weight_decay)]
"""
)

OPTIMIZER_CALL = (
    "optimizers = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), {eps},"
    " device_type, use_muon)\n"
)


@pytest.mark.parametrize("eps", ["eps", "args.eps"])
def test_a_forks_optimizer_is_made_with_what_its_train_py_passes(project, eps):
    fork(project)
    train = FORK_TRAIN_PY.replace("compile = False\n", "compile = False\neps = 1e-12\n")
    train = train.replace("mlp_mult = 4\n", "mlp_mult = 4\nuse_muon = False\n")
    (project.path / "train.py").write_text(train + OPTIMIZER_CALL.format(eps=eps))
    (project.path / "model.py").write_text(OPTIMIZER_MODEL_PY)
    result = project.run_subprocess("--gpt-configs", "config/train_plain.py", "-k", "memory")
    if eps == "eps":  # train.py's own arguments, values for this config; a list of one
        result.assert_outcomes(passed=1, deselected=1)
        return
    line = len(train.splitlines()) + 1
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            f"config/train_plain.py: memory check not run: *train.py:{line} passes `args.eps` to"
            " the model's configure_optimizers, whose value for this config cannot be read"
            " statically: the check cannot call it as train.py does"
        ]
    )


def test_a_fork_whose_step_computes_the_loss_outside_the_model_is_not_run_as_nanogpts(project):
    fork(project)
    step = (
        "def closure():\n    with ctx:\n        logits = model(X)\n"
        "        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), Y.view(-1))\n"
        "    loss.backward()\n"
    )
    (project.path / "train.py").write_text(FORK_TRAIN_PY + step)
    result = project.run("--gpt-configs", "config/train_plain.py", "-k", "memory")
    line = len(FORK_TRAIN_PY.splitlines()) + 3
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            f"config/train_plain.py: memory check not run: *train.py:{line} runs its model as"
            " `model(X)`, without the targets, and computes the loss outside it, not as"
            " nanoGPT's `logits, loss = model(X, Y)`"
        ]
    )


MOMENTUM_MODEL_PY = (
    FORK_MODEL_PY
    + """
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, use_muon):
        adamw = [p for n, p in self.named_parameters() if p.dim() < 2 or "mlps" not in n]
        if not use_muon:
            return torch.optim.AdamW(self.parameters(), learning_rate, betas)
        matrices = [p for n, p in self.named_parameters() if p.dim() >= 2 and "mlps" in n]
        return [Momentum(matrices), torch.optim.AdamW(adamw, learning_rate, betas)]


class Momentum(torch.optim.Optimizer):
    # after Muon's state: one float32 buffer a matrix
    def __init__(self, params):
        super().__init__(params, dict(lr=0.02))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                state["momentum_buffer"].mul_(0.95).add_(p.grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
"""
)


@pytest.mark.parametrize("model_args", ["its own", "nanoGPT's"])
def test_a_forks_optimizers_are_each_stepped_as_its_train_py_steps_them(project, model_args):
    """Also where the optimizer is all that differs: the fork's model is built to call its
    configure_optimizers."""
    fork(project)
    train = FORK_TRAIN_PY.replace("mlp_mult = 4\n", "mlp_mult = 4\nuse_muon = False\n")
    if model_args == "nanoGPT's":
        train = train.replace(", mlp_mult=mlp_mult)", ")")
    call = (
        "optimizers = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2),"
        " device_type, use_muon)\n"
    )
    (project.path / "train.py").write_text(train + call)
    (project.path / "model.py").write_text(MOMENTUM_MODEL_PY)
    project.config("train_muon.py", FORK_CONFIG + "use_muon = True\n")
    result = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-report", "report.json"
    )
    result.assert_outcomes(passed=3, deselected=3)
    by_path = records(project, result)
    plain, muon = by_path["config/train_plain.py"], by_path["config/train_muon.py"]
    if model_args == "nanoGPT's":  # plain takes AdamW's early return: nanoGPT's model, built in
        assert muon["mode"] == "simulated" and muon["peak_allocated_bytes"] > 0
        return
    # the four MLP matrices (2 layers x 2, 512 x 128) keep one float32 buffer, not AdamW's two
    # moments and its step count (a float32 scalar, in a block of 512 bytes)
    matrices = 2 * 2 * (512 * 128 * 4 + 512)
    assert plain["peak_allocated_bytes"] - muon["peak_allocated_bytes"] == matrices


SCHEDULE_FREE_MODEL_PY = (
    FORK_MODEL_PY
    + """
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, kind):
        if kind == "missing":
            import schedulefree_not_installed  # noqa: F401
        return ScheduleFree(self.parameters())


class ScheduleFree(torch.optim.SGD):
    # after schedulefree's optimizers: a step outside train mode raises
    def __init__(self, params):
        super().__init__(params, lr=0.01)
        self.in_train_mode = False

    def train(self):
        self.in_train_mode = True

    def step(self, closure=None):
        if not self.in_train_mode:
            raise Exception("Optimizer was not in train mode when step is called")
        return super().step(closure)
"""
)


@pytest.mark.parametrize("kind", ["train", "forgotten", "missing"])
def test_a_schedule_free_optimizer_is_run_as_train_py_runs_it(project, kind):
    fork(project)
    train = FORK_TRAIN_PY.replace("mlp_mult = 4\n", f"mlp_mult = 4\nkind = {kind!r}\n")
    train += (
        "optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2),"
        " device_type, kind)\n"
    )
    if kind != "forgotten":
        train += "optimizer.train()\n"
    (project.path / "train.py").write_text(train)
    (project.path / "model.py").write_text(SCHEDULE_FREE_MODEL_PY)
    # a subprocess: SGD's step loads Dynamo, whose ops an in-process run could not register
    # again after pytester unloads them
    result = project.run_subprocess("--gpt-configs", "config/train_plain.py", "-k", "memory")
    if kind == "train":
        result.assert_outcomes(passed=1, deselected=1)
        return
    result.assert_outcomes(failed=1, deselected=1)
    if kind == "forgotten":  # as the run would: the optimizer refuses its first step
        result.stdout.fnmatch_lines(["*Exception: Optimizer was not in train mode*"])
        return
    result.stdout.fnmatch_lines(
        [
            "config/train_plain.py: memory check not run: the project's model (*model.py)"
            " imports 'schedulefree_not_installed' at *model.py:*, which is not installed where"
            " pytest runs: install the project's requirements in this environment"
        ]
    )


def test_a_fork_without_a_model_py_is_not_checked_with_nanogpts(project):
    fork(project, model=False)
    result = project.run("--gpt-configs", "config/train_wide.py", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "config/train_wide.py: memory check not run: cannot check this architecture "
            "(train.py passes mlp_mult to its own GPTConfig): give the fork's model.py with "
            "--gpt-model"
        ]
    )


def test_gpt_model_names_the_forks_model_py_anywhere(project):
    fork(project, model=False)
    (project.path / "models").mkdir()
    (project.path / "models" / "moe.py").write_text(textwrap.dedent(FORK_MODEL_PY))
    result = project.run_subprocess(
        "--gpt-configs", "config/train_wide.py", "-k", "memory", "--gpt-model", "models/moe.py"
    )
    result.assert_outcomes(passed=1, deselected=1)


def test_the_model_train_py_imports_from_a_package_is_the_one_checked(project):
    root = project.path / "fork"  # not pytest's folder: nothing of it is on sys.path
    (root / "models").mkdir(parents=True)
    (root / "train.py").write_text("from models.moe import GPTConfig, GPT\n" + FORK_TRAIN_PY)
    (root / "configurator.py").write_text("# nanoGPT's configurator\n")
    # the model's own imports are found from train.py's folder, as in the run
    (root / "layers.py").write_text("WIDTH = 4\n")
    (root / "models" / "shapes.py").write_text("BIAS = False\n")
    (root / "models" / "init.py").write_text("STD = 0.02\n")
    model = "from layers import WIDTH\nfrom models.shapes import BIAS\nfrom .init import STD\n"
    model += FORK_MODEL_PY
    (root / "models" / "moe.py").write_text(textwrap.dedent(model))
    project.config("train_plain.py", FORK_CONFIG, folder="fork/config")
    project.config("train_wide.py", FORK_CONFIG + "mlp_mult = 32\n", folder="fork/config")
    result = project.run_subprocess(
        "--gpt-configs", "fork/config", "-k", "memory", "--gpt-report", "report.json"
    )
    result.assert_outcomes(passed=2, deselected=2)
    by_path = records(project, result)
    plain, wide = by_path["fork/config/train_plain.py"], by_path["fork/config/train_wide.py"]
    extra_weights = 2 * 2 * (32 - 4) * 128 * 128 * 4  # as with the fork's model.py beside
    assert wide["peak_allocated_bytes"] - plain["peak_allocated_bytes"] > 3 * extra_weights


def test_a_fork_whose_model_module_is_not_in_the_project_is_not_checked_with_nanogpts(project):
    plain_train = FORK_TRAIN_PY.replace("mlp_mult = 4\n", "").replace(", mlp_mult=mlp_mult", "")
    (project.path / "train.py").write_text("from model import GPTConfig, GPT\n" + plain_train)
    (project.path / "configurator.py").write_text("# nanoGPT's configurator\n")
    project.config("train_plain.py", FORK_CONFIG)
    result = project.run("--gpt-configs", "config", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "config/train_plain.py: memory check not run: *train.py:1 imports GPT from `model`,"
            " but there is no model.py beside it: the model it builds cannot be read*"
        ]
    )
    (project.path / "models").mkdir()
    (project.path / "models" / "gpt.py").write_text(textwrap.dedent(FORK_MODEL_PY))
    given = project.run_subprocess(
        "--gpt-configs", "config", "-k", "memory", "--gpt-model", "models/gpt.py"
    )
    given.assert_outcomes(passed=1, deselected=1)
