"""Test data: a nanochat-like gpt.py. Parameter-free RMSNorm, Linears with fp32 master weights
cast to the activations' dtype per call, rotary + QK norm, value embeddings on alternating
layers (the last always) mixed in by a per-head gate, smear, backout, a softcapped fp32 loss
over the whole vocabulary. `GPT(config)` is built on meta; `init_weights()` fills it and casts
the embeddings to COMPUTE_DTYPE."""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from nanochat.common import COMPUTE_DTYPE, print0
from nanochat.flash_attention import flash_attn
from nanochat.optim import MuonAdamW


@dataclass
class GPTConfig:
    sequence_len: int = 2048
    vocab_size: int = 32768
    n_layer: int = 12
    n_head: int = 6
    n_kv_head: int = 6
    n_embd: int = 768
    window_pattern: str = "SSSL"


def norm(x):
    return F.rms_norm(x, (x.size(-1),))


class Linear(nn.Linear):
    """A bias-free Linear whose fp32 weight is cast to the input's dtype at each call."""

    def forward(self, x):
        return F.linear(x, self.weight.to(dtype=x.dtype))


def has_ve(layer, n_layer):
    return layer % 2 == (n_layer - 1) % 2


def rotate(x, cos, sin):
    half = x.shape[3] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos + b * sin, a * (-sin) + b * cos], 3)


class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.n_head, self.n_kv_head = config.n_head, config.n_kv_head
        self.head_dim = config.n_embd // config.n_head
        d, kv = config.n_embd, config.n_kv_head * self.head_dim
        self.c_q = Linear(d, config.n_head * self.head_dim, bias=False)
        self.c_k = Linear(d, kv, bias=False)
        self.c_v = Linear(d, kv, bias=False)
        self.c_proj = Linear(d, d, bias=False)
        self.ve_gate_channels = 12
        self.ve_gate = Linear(12, config.n_kv_head, bias=False) if has_ve(layer, config.n_layer) else None

    def forward(self, x, ve, cos_sin, window_size):
        B, T, _ = x.size()
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_kv_head, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_kv_head, self.head_dim)
        if ve is not None:
            gate = 3 * torch.sigmoid(self.ve_gate(x[..., : self.ve_gate_channels]))
            v = v + gate.unsqueeze(-1) * ve.view(B, T, self.n_kv_head, self.head_dim)
        cos, sin = cos_sin
        q, k = norm(rotate(q, cos, sin)) * 1.2, norm(rotate(k, cos, sin)) * 1.2
        y = flash_attn.flash_attn_func(q, k, v, causal=True, window_size=window_size)
        return self.c_proj(y.contiguous().view(B, T, -1))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.attn = CausalSelfAttention(config, layer)
        self.mlp = MLP(config)

    def forward(self, x, ve, cos_sin, window_size):
        x = x + self.attn(norm(x), ve, cos_sin, window_size)
        return x + self.mlp(norm(x))


class GPT(nn.Module):
    def __init__(self, config, pad_vocab_size_to=64):
        """Shapes only (this runs on meta): `init_weights` makes the values."""
        super().__init__()
        self.config = config
        self.window_sizes = self._compute_window_sizes(config)
        vocab = -(-config.vocab_size // pad_vocab_size_to) * pad_vocab_size_to
        if vocab != config.vocab_size:
            print0(f"vocab padded from {config.vocab_size} to {vocab}")
        kv_dim = config.n_kv_head * (config.n_embd // config.n_head)
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab, config.n_embd),
            "h": nn.ModuleList(Block(config, i) for i in range(config.n_layer)),
        })
        self.lm_head = Linear(config.n_embd, vocab, bias=False)
        self.resid_lambdas = nn.Parameter(torch.ones(config.n_layer))
        self.x0_lambdas = nn.Parameter(torch.zeros(config.n_layer))
        self.smear_gate = Linear(24, 1, bias=False)
        self.smear_lambda = nn.Parameter(torch.zeros(1))
        self.backout_lambda = nn.Parameter(torch.ones(1))
        self.value_embeds = nn.ModuleDict({
            str(i): nn.Embedding(vocab, kv_dim) for i in range(config.n_layer) if has_ve(i, config.n_layer)
        })
        self.rotary_seq_len = 10 * config.sequence_len
        cos, sin = self._rotary(self.rotary_seq_len, config.n_embd // config.n_head)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    @torch.no_grad()
    def init_weights(self):
        d, n_layer = self.config.n_embd, self.config.n_layer
        bound = (3 / d) ** 0.5
        nn.init.normal_(self.transformer.wte.weight, std=0.8)
        nn.init.normal_(self.lm_head.weight, std=0.001)
        for block in self.transformer.h:
            for w in (block.attn.c_q.weight, block.attn.c_k.weight, block.attn.c_v.weight):
                nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(block.mlp.c_fc.weight, -0.4 * bound, 0.4 * bound)
            nn.init.zeros_(block.attn.c_proj.weight)
            nn.init.zeros_(block.mlp.c_proj.weight)
            if block.attn.ve_gate is not None:
                nn.init.uniform_(block.attn.ve_gate.weight, 0.0, 0.02)
        depth = torch.arange(n_layer, dtype=torch.float32) / max(n_layer - 1, 1)
        self.resid_lambdas.copy_(1.15 - 0.1 * depth)
        self.x0_lambdas.copy_(0.2 - 0.15 * depth)
        nn.init.zeros_(self.smear_lambda)
        nn.init.constant_(self.backout_lambda, 0.2)
        nn.init.uniform_(self.smear_gate.weight, 0.0, 0.02)
        for ve in self.value_embeds.values():
            nn.init.uniform_(ve.weight, -bound, bound)
        self.cos, self.sin = self._rotary(self.rotary_seq_len, d // self.config.n_head)
        if COMPUTE_DTYPE != torch.float16:  # fp16 keeps fp32 embeddings for the grad scaler
            self.transformer.wte.to(dtype=COMPUTE_DTYPE)
            for ve in self.value_embeds.values():
                ve.to(dtype=COMPUTE_DTYPE)

    def _rotary(self, seq_len, head_dim, base=100000):
        device = self.transformer.wte.weight.device
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
        freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32, device=device), inv_freq)
        cos, sin = freqs.cos().to(COMPUTE_DTYPE), freqs.sin().to(COMPUTE_DTYPE)
        return cos[None, :, None, :], sin[None, :, None, :]

    def _compute_window_sizes(self, config):
        pattern = config.window_pattern.upper()
        assert pattern and all(c in "SL" for c in pattern), f"Invalid window_pattern: {pattern}"
        full = config.sequence_len
        short = -(-full // 4 // 128) * 128
        sizes = [(full if pattern[i % len(pattern)] == "L" else short, 0) for i in range(config.n_layer)]
        sizes[-1] = (full, 0)
        return sizes

    def num_scaling_params(self):
        count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
        scalars = sum(p.numel() for p in (self.resid_lambdas, self.x0_lambdas, self.smear_gate.weight,
                                          self.smear_lambda, self.backout_lambda))
        counts = {
            "wte": count(self.transformer.wte),
            "value_embeds": count(self.value_embeds),
            "lm_head": count(self.lm_head),
            "transformer_matrices": count(self.transformer.h),
            "scalars": scalars,
        }
        counts["total"] = sum(counts.values())
        return counts

    def setup_optimizer(self, unembedding_lr=0.004, embedding_lr=0.2, matrix_lr=0.02, weight_decay=0.0,
                        scalar_lr=0.5):
        scale = (self.config.n_embd / 768) ** -0.5
        matrices = list(self.transformer.h.parameters())
        adamw = lambda params, lr, betas, wd: dict(  # noqa: E731
            kind="adamw", params=params, lr=lr, betas=betas, eps=1e-10, weight_decay=wd
        )
        groups = [
            adamw(list(self.lm_head.parameters()), unembedding_lr * scale, (0.8, 0.96), 0.01),
            adamw(list(self.transformer.wte.parameters()), embedding_lr * scale, (0.8, 0.995), 0.001),
            adamw(list(self.value_embeds.parameters()), embedding_lr * scale / 2, (0.8, 0.995), 0.01),
            adamw([self.resid_lambdas], scalar_lr * 0.01, (0.8, 0.95), 0.05),
            adamw([self.x0_lambdas], scalar_lr, (0.96, 0.95), 0.0),
            adamw([self.smear_gate.weight, self.smear_lambda, self.backout_lambda], 0.2, (0.8, 0.95), 0.0),
        ]
        for shape in sorted({p.shape for p in matrices}):
            groups.append(dict(kind="muon", params=[p for p in matrices if p.shape == shape], lr=matrix_lr,
                               momentum=0.95, ns_steps=5, beta2=0.9, weight_decay=weight_decay))
        optimizer = MuonAdamW(groups)
        for group in optimizer.param_groups:
            group["initial_lr"] = group["lr"]
        return optimizer

    def forward(self, idx, targets=None, loss_reduction="mean"):
        B, T = idx.size()
        assert T <= self.cos.size(1) and self.cos.dtype == COMPUTE_DTYPE
        cos_sin = self.cos[:, :T], self.sin[:, :T]
        x = norm(self.transformer.wte(idx).to(COMPUTE_DTYPE))
        gate = self.smear_lambda.to(x.dtype) * torch.sigmoid(self.smear_gate(x[:, 1:, :24]))
        x = torch.cat([x[:, :1], x[:, 1:] + gate * x[:, :-1]], dim=1)
        x0, x_backout = x, None
        for i, block in enumerate(self.transformer.h):
            x = self.resid_lambdas[i] * x + self.x0_lambdas[i] * x0
            ve = self.value_embeds[str(i)](idx).to(x.dtype) if str(i) in self.value_embeds else None
            x = block(x, ve, cos_sin, self.window_sizes[i])
            if i == self.config.n_layer // 2:
                x_backout = x
        x = norm(x - self.backout_lambda.to(x.dtype) * x_backout)
        logits = self.lm_head(x)[..., : self.config.vocab_size].float()
        logits = 15 * torch.tanh(logits / 15)
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1,
                               reduction=loss_reduction)
