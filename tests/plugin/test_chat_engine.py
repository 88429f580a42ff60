"""nanochat runs in the engine: the test checkout (tests/data/nanochat) trains for real, and
its step simulated on fake tensors holds what nanochat's step holds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

CHECKOUT = Path(__file__).resolve().parents[1] / "data" / "nanochat"

REAL_STEP = """\
import torch
from nanochat.common import COMPUTE_DTYPE
from nanochat.gpt import GPT, GPTConfig

config = GPTConfig(sequence_len=64, vocab_size=500, n_layer=2, n_head=2, n_kv_head=2,
                   n_embd=128, window_pattern="SL")
with torch.device("meta"):
    model = GPT(config)
model.to_empty(device="cpu")
model.init_weights()
optimizer = model.setup_optimizer()
torch.manual_seed(0)
x, y = torch.randint(0, 500, (2, 64)), torch.randint(0, 500, (2, 64))
before = {name: p.detach().clone() for name, p in model.named_parameters()}
losses = []
for _ in range(3):
    loss = model(x, y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    optimizer.step()
    model.zero_grad(set_to_none=True)
    losses.append(loss.item())
unchanged = [n for n, p in model.named_parameters() if torch.equal(before[n], p)]
print(COMPUTE_DTYPE, model.transformer.wte.weight.dtype, model.lm_head.weight.dtype,
      model.window_sizes, losses[-1] < losses[0], unchanged)
"""


@pytest.mark.parametrize(
    ("dtype", "embeddings"), [("float32", "torch.float32"), ("bfloat16", "torch.bfloat16")]
)
def test_the_test_checkout_trains_on_cpu(dtype, embeddings):
    """Depth 2, 64 tokens, real tensors: the loss falls and every parameter moves; the
    embeddings are in the compute dtype, the Linears' master weights fp32; layer 0 is a
    short window (64 // 4 rounded up to 128 covers the context), the last always full.
    The optimizer's compiled kernels run eagerly (TORCHDYNAMO_DISABLE) to keep this quick."""
    env = {**os.environ, "NANOCHAT_DTYPE": dtype, "TORCHDYNAMO_DISABLE": "1", "PYTHONPATH": "."}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REAL_STEP)],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"torch.{dtype} {embeddings} torch.float32 [(128, 0), (64, 0)] True []"
    )
