"""What a project's model.py runs, read without running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.facts.gpus import get_profile
from gptlint.lint.linter import lint_file
from gptlint.nanogpt.derive import derive_run
from gptlint.nanogpt.program import manual_attention, parse_python, read_loop
from gptlint.nanogpt.resolve import load_config
from gptlint.nanogpt.schema import NANOGPT_DEFAULTS
from gptlint.runmodel.estimate import estimate_memory
from gptlint.settings.table import Settings

MANUAL = Path(__file__).resolve().parents[1] / "plugin/data/manual_attention"

NANOGPT_ATTENTION = """
class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        self.flash = hasattr(torch.nn.functional, 'scaled_dot_product_attention')

    def forward(self, x):
        if self.flash:
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = F.softmax(att, dim=-1)
"""


@pytest.mark.parametrize(
    ("source", "manual"),
    [
        (NANOGPT_ATTENTION, False),  # flash wherever torch has SDPA (>= 2.0)
        (NANOGPT_ATTENTION.replace("hasattr(", "False and hasattr("), False),  # not a literal
        (
            NANOGPT_ATTENTION
            + "\nclass Slow:\n    def __init__(self):\n        self.flash = False\n",
            True,
        ),
        ("att = F.softmax(q @ k.transpose(-2, -1), dim=-1)\n", True),  # never calls SDPA
        ("@dataclass\nclass GPTConfig:\n    n_head: int = 12\n", False),  # no attention code
        ("def broken(:\n", False),  # unreadable: nanoGPT's flash path is assumed
    ],
)
def test_manual_attention_is_read_from_model_py(tmp_path, source, manual):
    path = tmp_path / "model.py"
    path.write_text(source)
    assert manual_attention(path) is manual


def test_a_missing_model_py_is_not_manual(tmp_path):
    assert manual_attention(tmp_path / "model.py") is False


def test_gpt501_names_manual_attention_for_a_slow_attention_model(tmp_path):
    config = tmp_path / "config" / "big.py"
    config.parent.mkdir()
    config.write_text("batch_size = 64\nblock_size = 1024\ncompile = False\n")
    settings = Settings(model=MANUAL / "model.py")
    (message,) = [d.message for d in lint_file(config, settings) if d.code == "GPT501"]
    assert "manual attention (computed in the model)" in message
    assert "flash" not in message


STOCK_LOOP = """
while True:
    for micro_step in range(gradient_accumulation_steps):
        with ctx:
            logits, loss = model(X, Y)
            loss = loss / gradient_accumulation_steps
        X, Y = get_batch('train')
        scaler.scale(loss).backward()
"""


@pytest.mark.parametrize(
    ("source", "keeps"),
    [
        (STOCK_LOOP, True),  # nanoGPT
        (STOCK_LOOP.replace("logits, loss", "_, loss"), True),  # `_` is a name like any other
        (STOCK_LOOP.replace("logits, loss = model(X, Y)", "loss = model(X, Y)[1]"), False),
        (
            STOCK_LOOP.replace("        X, Y = get_batch", "        del logits\n        X, Y ="),
            False,
        ),
        (STOCK_LOOP + "    del logits\n", True),  # deleted after the backward: too late
        (
            "def step(model, X, Y):\n    logits, loss = model(X, Y)\n    return loss\n"
            + STOCK_LOOP.replace("logits, loss = model(X, Y)", "loss = step(model, X, Y)"),
            False,  # a helper's logits die when it returns
        ),
        (
            "def estimate_loss():\n    for k in range(eval_iters):\n"
            "        logits, loss = model(X, Y)\n    return out\n"
            "while True:\n    losses = estimate_loss()\n" + STOCK_LOOP.replace("while True:\n", ""),
            True,  # nanoGPT's evaluation runs the model earlier in the loop: not the micro-step
        ),
    ],
)
def test_the_loop_is_read_from_train_py(source, keeps):
    loop = read_loop(parse_python(source))
    assert loop.keeps_logits is keeps and not loop.assumed
    assert "train.py line" in loop.how


@pytest.mark.parametrize("source", ["batch_size = 12\n", "def broken(:\n"])
def test_a_loop_that_cannot_be_read_is_nanogpts_and_says_so(source):
    loop = read_loop(parse_python(source))
    assert loop.keeps_logits and loop.assumed
    assert "assumed nanoGPT's loop: `logits, loss = model(X, Y)`" in loop.note


def test_a_forks_loop_reaches_the_step_and_the_estimate(tmp_path):
    values = {**NANOGPT_DEFAULTS, "batch_size": 12, "dtype": "float16", "compile": False}
    base = "".join(f"{key} = {value!r}\n" for key, value in values.items())
    config = tmp_path / "config" / "run.py"
    config.parent.mkdir()
    config.write_text("batch_size = 12\n")
    a100 = get_profile("a100-80gb")
    estimates = {}
    for keeps, loop in [
        (True, STOCK_LOOP),
        (False, STOCK_LOOP.replace("logits, loss = model(X, Y)", "loss = model(X, Y)[1]")),
    ]:
        (tmp_path / "train.py").write_text(base + "exec(open('configurator.py').read())\n" + loop)
        run = derive_run(load_config(config), a100).value
        assert run is not None
        assert run.spec.keeps_logits is keeps
        assert any("keeps only an item of the model's output" in n for n in run.notes) is not keeps
        estimates[keeps] = estimate_memory(run.spec, a100).tensors
    # GPT-2 124M at batch 12 in fp16: one B x T x vocab fp16 tensor less, 1.15 GiB
    assert estimates[True] - estimates[False] == 12 * 1024 * 50304 * 2
