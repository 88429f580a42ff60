"""A project's model that fake tensors cannot run ends the memory check with one clear
paragraph, never a traceback in the user's test run; one whose initialisation reads its
weights' values is still simulated."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

pytest_plugins = ["pytester"]

MODEL_START = """
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 100
    n_layer: int = 1
    n_head: int = 1
    n_embd: int = 16
    dropout: float = 0.0
    bias: bool = False


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
"""
"""A model.py's start, up to where its GPT.__init__ made its two layers."""

ROUTED_MODEL = (
    MODEL_START
    + """

    def forward(self, idx, targets=None):
        x = self.wte(idx)
        if x.abs().sum().item() > 0:  # routing on a value: fake tensors have none
            x = x * 2
        logits = self.head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
"""
)


def line_of(text: str, part: str) -> int:
    """The number of the first line of `text` (a file's) that holds `part`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if part in line)


def test_a_model_that_reads_tensor_values_is_explained_not_a_traceback(project):
    project.config("tiny.py")
    (project.path / "model.py").write_text(ROUTED_MODEL)
    line = line_of(ROUTED_MODEL, ".item()")
    result = project.run("-q", "--gpt-configs", "config", "--gpt-model", "model.py", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "config/tiny.py: memory check not run: the project's model (*model.py) could not be"
            f" run on fake tensors (DataDependentOutputException: *) at *model.py:{line}"
            " (`if x.abs().sum().item() > 0:*`); a forward that depends on tensor values*"
            "--gpt-mode cuda on a GPU",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


BROKEN_CONFIG_MODEL = (
    MODEL_START.replace(
        "    bias: bool = False\n",
        "    bias: bool = False\n    impl: dict = field(default_factory={})\n",
    ).replace("from dataclasses import dataclass", "from dataclasses import dataclass, field")
    + """

    def forward(self, idx, targets=None):
        logits = self.head(self.wte(idx))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
"""
)

OTHER_OPTIMIZER_MODEL = (
    BROKEN_CONFIG_MODEL.replace("    impl: dict = field(default_factory={})\n", "")
    + """
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, use_muon):
        return [torch.optim.AdamW(self.parameters(), lr=learning_rate, betas=betas)]
"""
)


def test_a_gptconfig_that_raises_is_named_at_its_class(project):
    # a dataclass field whose default_factory is a dict: GPTConfig() raises on any device
    project.config("tiny.py")
    (project.path / "model.py").write_text(BROKEN_CONFIG_MODEL)
    args = ("-q", "--gpt-configs", "config", "--gpt-model", "model.py", "-k", "memory")
    result = project.run_subprocess(*args)
    result.assert_outcomes(failed=1, deselected=1)
    line = line_of(BROKEN_CONFIG_MODEL, "class GPTConfig")
    result.stdout.fnmatch_lines(
        [
            f"config/tiny.py: memory check not run: *model.py:{line}: its GPTConfig(**model_args)"
            " raised TypeError: 'dict' object is not callable, as train.py's would",
        ]
    )
    result.stdout.no_fnmatch_line("*can only be measured*")


@pytest.mark.parametrize(
    ("model", "where"),
    [
        # a fork's optimizer takes another argument (and returns a list of optimizers)
        (OTHER_OPTIMIZER_MODEL, "*trainstep.py:* (`made = configure(*)`)"),
    ],
    ids=["other-optimizer-call"],
)
def test_an_error_that_is_not_a_fake_tensor_limit_names_its_line_without_sending_to_cuda(
    project, model, where
):
    project.config("tiny.py")
    (project.path / "model.py").write_text(model)
    # in a process of its own, where torch's modules are loaded once (see above)
    args = ("-q", "--gpt-configs", "config", "--gpt-model", "model.py", "-k", "memory")
    result = project.run_subprocess(*args)
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            f"config/tiny.py: memory check not run: TypeError: * at {where}, while the check ran"
            " the project's model (*model.py) as nanoGPT's train.py does (*); not a limit of"
            " fake tensors (--gpt-mode cuda makes the same calls)*",
        ]
    )
    result.stdout.no_fnmatch_line("*can only be measured*")
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize("where", ["import", pytest.param("GPT.__init__", marks=pytest.mark.slow)])
def test_a_model_that_calls_sys_exit_is_one_line_naming_it(project, where):
    project.config("tiny.py")
    exits = "import sys\nsys.exit(0)\n" if where == "import" else ""
    model = MODEL_START.replace("super().__init__()", "super().__init__()\n        sys.exit(0)")
    (project.path / "model.py").write_text(
        exits + MODEL_START if where == "import" else "import sys\n" + model
    )
    args = ("-q", "--gpt-configs", "config", "--gpt-model", "model.py", "-k", "memory")
    # building runs in the engine: in a process of its own, where torch's modules are loaded
    # once (pytester's in-process runs drop the modules an earlier run loaded)
    result = project.run(*args) if where == "import" else project.run_subprocess(*args)
    result.assert_outcomes(failed=1, deselected=1)
    doing = "importing it" if where == "import" else "building its GPT"
    result.stdout.fnmatch_lines(
        [f"config/tiny.py: memory check not run: *model.py: {doing} called sys.exit(0)"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*SystemExit*")


INITIALISED_MODEL = (
    MODEL_START
    + """
        with torch.no_grad():
            {init}

    def forward(self, idx, targets=None):
        logits = self.head(self.wte(idx))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
"""
)

INITIALISATIONS = {
    "plain": "nn.init.normal_(self.wte.weight, std=0.02)\n"
    "            nn.init.normal_(self.head.weight, std=0.02)",
    # trunc_normal_ samples again until no weight is out of range (torch 2.13 does), and so does
    # the loop below: both read the weights
    "reading": "nn.init.trunc_normal_(self.wte.weight, std=0.02, a=-0.04, b=0.04)\n"
    "            self.head.weight.normal_(0, 0.02)\n"
    "            while (self.head.weight.abs() > 0.04).any():\n"
    "                self.head.weight.normal_(0, 0.02)",
}


@pytest.mark.slow
def test_a_model_whose_initialisation_reads_its_weights_is_simulated(project):
    """Fake weights have no values; reading them while the model is built reads zero (what
    they start as never changes the memory), so the step runs, with the memory of the same
    model initialised without reading them."""
    for name, init in INITIALISATIONS.items():  # two projects, each with its own model.py
        project.config("tiny.py", folder=f"{name}/config")
        (project.path / name / "model.py").write_text(INITIALISED_MODEL.format(init=init))
        (project.path / name / "pyproject.toml").write_text('[tool.gptlint]\nmodel = "model.py"\n')
    result = project.run_subprocess(
        "-q", "--gpt-configs", "plain/config", "--gpt-configs", "reading/config", "-k", "memory",
        "--gpt-report", "report.json",
    )  # fmt: skip
    result.assert_outcomes(passed=2, deselected=2)
    records = json.loads((project.path / "report.json").read_text())["configs"]
    peaks = {}
    for record in records:
        peaks[record["path"].split("/")[0]] = (
            record["peak_allocated_bytes"],
            record["peak_reserved_bytes"],
        )
        # counted on the model that ran (an embedding and a head of the config's width), not
        # nanoGPT's count for the config's shape
        assert record["params"] == record["params_total"] == 2 * 50304 * 64
    assert peaks["reading"] == peaks["plain"]


BREAKING_MODEL = (
    MODEL_START
    + """

    def forward(self, idx, targets=None):
        x = self.wte(idx)
        torch._dynamo.graph_break()  # torch.compile runs it in two graphs: not planned whole
        logits = self.head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
"""
)


@pytest.mark.slow
def test_a_projects_model_that_cannot_be_planned_is_an_upper_bound_said_so(project):
    project.config("tiny.py", project.tiny.replace("compile = False", "compile = True"))
    (project.path / "model.py").write_text(BREAKING_MODEL)
    result = project.run_subprocess(
        "-q", "--gpt-configs", "config", "--gpt-model", "model.py", "-k", "memory",
        "--gpt-memory-budget", "10MB", "--gpt-report", "report.json", "--gpt-snapshot", "snaps",
    )  # fmt: skip
    result.assert_outcomes(failed=1, deselected=1)
    out = result.stdout.str()
    assert "eager step simulated on fake tensors, no GPU used, an upper bound" in out
    assert list((project.path / "snaps").glob("*.pickle"))  # the eager step's, as it ran
    assert "simulated (eager, upper bound)" in out  # the table's mode column
    assert "Dynamo cannot capture the model whole" in out
    assert "(simulated eager step: the compiled run fits at least this)" in out
    record = json.loads((project.path / "report.json").read_text())["configs"][0]
    assert (record["mode"], record["step"], record["upper_bound"]) == ("simulated", "eager", True)
    assert record["compile"] is True
