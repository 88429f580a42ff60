"""A project's own model.py for `--gpt-model`: nanoGPT's interface, a different (tiny) model.

Building it appends `<n_layer>x<n_embd>` to the file named by $MODEL_BUILT_LOG, if set, so that
tests can tell it ran; with $MODEL_PRINTS set it prints `built <n_layer> layers in <pid>`, and with
$MODEL_WARNS set it warns `a model of <n_layer> layers` (a UserWarning).
"""

import os
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if log := os.environ.get("MODEL_BUILT_LOG"):
            with open(log, "a") as file:
                file.write(f"{config.n_layer}x{config.n_embd}\n")
        if os.environ.get("MODEL_PRINTS"):
            print(f"built {config.n_layer} layers in {os.getpid()}")
        if os.environ.get("MODEL_WARNS"):
            warnings.warn(f"a model of {config.n_layer} layers", UserWarning, stacklevel=1)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.mlp = nn.Sequential(
            *[nn.Linear(config.n_embd, config.n_embd) for _ in range(config.n_layer)]
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.lm_head(self.mlp(self.wte(idx)))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
