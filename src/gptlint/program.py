"""What a project's model.py and train.py run, read statically (never executed).

- Attention: nanoGPT's model.py calls `F.scaled_dot_product_attention` when `self.flash` is
  true (`hasattr(torch.nn.functional, 'scaled_dot_product_attention')`, true on torch >= 2.0);
  a fork that sets `self.flash = False`, or whose model.py never calls SDPA, computes attention
  itself (scores, mask, softmax), keeping B x H x T x T tensors per layer.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from gptlint.source import read_regular

SDPA = "scaled_dot_product_attention"


def manual_attention(model_py: Path) -> bool:
    """Whether the model.py at `model_py` computes attention itself rather than through SDPA:
    it sets `self.flash = False`, or never names `scaled_dot_product_attention`. False where the
    file cannot be read or parsed (nanoGPT's flash path is assumed)."""
    try:
        info = model_py.stat()
    except OSError:
        return False
    return _manual_attention(model_py.resolve(), (info.st_mtime_ns, info.st_size))


@lru_cache(maxsize=32)
def _manual_attention(model_py: Path, version: tuple[int, int]) -> bool:
    try:
        text = read_regular(model_py).decode("utf-8")
        tree = ast.parse(text)
    except (OSError, ValueError, SyntaxError, RecursionError, MemoryError):
        return False
    if SDPA not in text:
        return True
    return any(_sets_flash_false(node) for node in ast.walk(tree))


def _sets_flash_false(node: ast.AST) -> bool:
    """`self.flash = False` (or `self.flash: bool = False`)."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return False
    flag = any(isinstance(t, ast.Attribute) and t.attr == "flash" for t in targets)
    return flag and isinstance(value, ast.Constant) and value.value is False
