"""What a project's model.py runs, read without running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlint.lint import lint_file
from gptlint.program import manual_attention
from gptlint.settings import Settings

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
    assert "manual attention (softmax in the model)" in message
    assert "flash" not in message
