"""The built-in model: a GPT with nanoGPT's structure, parameter names, init and optimizer groups.

Facts taken from nanoGPT's `model.py`: LayerNorm with an optional bias, one fused `c_attn`
projection for q/k/v, `F.scaled_dot_product_attention(is_causal=True)`, a 4x GELU MLP, token
and position embeddings, the token embedding tied to `lm_head`, GPT-2 init (std 0.02, residual
projections scaled by 1/sqrt(2 n_layer)), full `B x T x vocab` logits and
`F.cross_entropy(ignore_index=-1)` when targets are given, AdamW with weight decay on tensors of
two or more dims, fused on CUDA.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gptlint.runmodel.trainingrun import ModelShape


class LayerNorm(nn.Module):
    """LayerNorm whose bias can be switched off (nanoGPT's `bias=False`)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through `scaled_dot_product_attention`."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        if shape.n_embd % shape.n_head:
            raise ValueError(f"n_embd={shape.n_embd} is not divisible by n_head={shape.n_head}")
        self.c_attn = nn.Linear(shape.n_embd, 3 * shape.n_embd, bias=shape.bias)
        self.c_proj = nn.Linear(shape.n_embd, shape.n_embd, bias=shape.bias)
        self.resid_dropout = nn.Dropout(shape.dropout)
        self.n_head = shape.n_head
        self.n_embd = shape.n_embd
        self.dropout = shape.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=None,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Linear 4x, GELU, Linear back, dropout."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.c_fc = nn.Linear(shape.n_embd, 4 * shape.n_embd, bias=shape.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * shape.n_embd, shape.n_embd, bias=shape.bias)
        self.dropout = nn.Dropout(shape.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block with residual connections."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(shape.n_embd, bias=shape.bias)
        self.attn = CausalSelfAttention(shape)
        self.ln_2 = LayerNorm(shape.n_embd, bias=shape.bias)
        self.mlp = MLP(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.ModuleDict):
    """nanoGPT's `transformer` ModuleDict, its entries typed."""

    wte: nn.Embedding
    wpe: nn.Embedding
    drop: nn.Dropout
    h: nn.ModuleList
    ln_f: LayerNorm


class GPT(nn.Module):
    """nanoGPT's GPT at a given shape; `forward(idx, targets)` returns `(logits, loss)`."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.shape = shape
        self.transformer = Transformer(
            {
                "wte": nn.Embedding(shape.vocab_size, shape.n_embd),
                "wpe": nn.Embedding(shape.block_size, shape.n_embd),
                "drop": nn.Dropout(shape.dropout),
                "h": nn.ModuleList([Block(shape) for _ in range(shape.n_layer)]),
                "ln_f": LayerNorm(shape.n_embd, bias=shape.bias),
            }
        )
        self.lm_head = nn.Linear(shape.n_embd, shape.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * shape.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; tied weights count once, position embeddings left out by default."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        _, t = idx.size()
        if t > self.shape.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.shape.block_size}")
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizers(
        self,
        weight_decay: float,
        learning_rate: float,
        betas: tuple[float, float],
        device_type: str,
    ) -> torch.optim.AdamW:
        """AdamW with decay on >= 2-dim tensors only; fused where the device supports it."""
        return adamw(self, weight_decay, learning_rate, betas, device_type)


def adamw(
    model: nn.Module,
    weight_decay: float,
    learning_rate: float,
    betas: tuple[float, float],
    device_type: str,
) -> torch.optim.AdamW:
    """nanoGPT's AdamW: weight decay on the trainable tensors of two or more dims (matmul
    weights, embeddings), none on the rest (biases, LayerNorm); fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device_type == "cuda"
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)
