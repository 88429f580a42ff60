"""A project's model that fake tensors cannot run ends the memory check with one clear
paragraph, never a traceback in the user's test run."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

pytest_plugins = ["pytester"]

ROUTED_MODEL = """
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

    def forward(self, idx, targets=None):
        x = self.wte(idx)
        if x.abs().sum().item() > 0:  # routing on a value: fake tensors have none
            x = x * 2
        logits = self.head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
"""


def test_a_model_that_reads_tensor_values_is_explained_not_a_traceback(project):
    project.config("tiny.py")
    (project.path / "model.py").write_text(ROUTED_MODEL)
    result = project.run("-q", "--gpt-configs", "config", "--gpt-model", "model.py", "-k", "memory")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "config/tiny.py: memory check not run: the project's model (*model.py) could not be"
            " run on fake tensors (DataDependentOutputException: *); a forward that depends on"
            " tensor values*--gpt-mode cuda on a GPU",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
