"""What a project's model.py and train.py run, read statically (never executed).

- The micro-step: nanoGPT's train.py runs `logits, loss = model(X, Y)` in its loop, so the
  B x T x vocab logits stay referenced through the backward (and until the next forward
  returns). A loop that does not keep them (`loss = model(X, Y)[1]`, a `del logits` before the
  backward, or a loss computed in a helper function whose locals die when it returns) frees
  them when the loss is computed: one B x T x vocab tensor less at the peak.
- The forward call: nanoGPT's model computes the loss itself when given the targets
  (`model(X, Y)`). A train.py whose training step calls `model(X)` alone computes the loss
  outside the model, eagerly (a float32 copy of the B x T x vocab logits under autocast, the
  compiled graph ending at the logits): a step nanoGPT's estimate and the plugin's
  simulation do not run, said with its line (`training_forward`).
- Attention: nanoGPT's model.py calls `F.scaled_dot_product_attention` when `self.flash` is
  true (`hasattr(torch.nn.functional, 'scaled_dot_product_attention')`, true on torch >= 2.0);
  a fork that sets `self.flash = False`, or whose model.py calls `softmax` but never SDPA,
  computes attention itself (scores, mask, softmax), keeping B x H x T x T tensors per layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeGuard

from gptlint.text.files import read_regular

SDPA = "scaled_dot_product_attention"


def manual_attention(model_py: Path) -> bool:
    """Whether the model.py at `model_py` computes attention itself rather than through SDPA:
    it sets `self.flash = False`, or calls `softmax` and never names
    `scaled_dot_product_attention`. False where the file cannot be read or parsed, or holds no
    attention code at all (a `GPTConfig` alone): nanoGPT's flash path is assumed."""
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
    if any(_sets_flash_false(node) for node in ast.walk(tree)):
        return True
    return SDPA not in text and any(_calls_softmax(node) for node in ast.walk(tree))


def _calls_softmax(node: ast.AST) -> bool:
    """`F.softmax(...)`, `torch.softmax(...)`, `x.softmax(...)` or `softmax(...)`."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name == "softmax"


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


@dataclass(frozen=True)
class Loop:
    """Whether train.py's micro-step keeps the logits alive through the backward, and how that
    was found (`how`: what train.py says, or, `assumed`, which loop was assumed)."""

    keeps_logits: bool
    how: str
    assumed: bool = False

    @property
    def note(self) -> str | None:
        """What a run's notes say of the loop: where it was assumed or frees the logits."""
        if self.assumed or not self.keeps_logits:
            return f"the micro-step: {self.how}"
        return None


NANOGPT_LOOP = Loop(True, "nanoGPT's loop: `logits, loss = model(X, Y)` keeps the logits")


def parse_python(text: str) -> ast.Module | None:
    """CPython's tree of a script's source, None where it does not parse (or is too deep)."""
    try:
        return ast.parse(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return None


def read_loop(tree: ast.Module | None) -> Loop:
    """The micro-step of the train.py whose tree (`parse_python`) is `tree`: the statement at
    module level (train.py's loop, not a function) that calls `model(X, Y)` or a train.py
    function that does, found nearest before a `.backward()` call. Where none is found, or
    train.py does not parse (`tree` None), nanoGPT's loop is assumed and `how` says so."""
    if tree is None:
        return _assumed("train.py could not be parsed")
    top = list(_module_level(tree))
    backwards = sorted(node.lineno for node in top if _calls_backward(node))
    if not backwards:
        return _assumed("no `.backward()` call at train.py's top level")
    helpers = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and _runs_model(f)}
    deleted = [
        (t.id, n.lineno) for n in top if isinstance(n, ast.Delete) for t in n.targets if _named(t)
    ]
    steps = [
        node
        for node in top
        if isinstance(node, ast.Assign)
        and (
            _is_model_call(node.value)
            or _is_model_call(_subscripted(node.value))
            or _calls_helper(node.value, helpers)
        )
    ]
    # the micro-step is the call nearest before a backward (nanoGPT's evaluation,
    # `losses = estimate_loss()`, also runs the model at the top level, earlier)
    paired = [(b - n.lineno, n, b) for n in steps for b in backwards if b > n.lineno]
    if paired:
        _, node, backward = min(paired, key=lambda pair: pair[0])
        if _is_model_call(node.value):
            return _from_assignment(node, deleted, backward)
        if _is_model_call(_subscripted(node.value)):
            line = node.lineno
            return Loop(False, f"train.py line {line} keeps only an item of the model's output")
        how = f"train.py line {node.lineno} computes the loss in a function"
        if isinstance(node.targets[0], ast.Tuple):  # the helper may return the logits
            return Loop(True, how + " that returns more than the loss: logits assumed kept")
        return Loop(False, how + ": its logits are freed when it returns")
    return _assumed("no `model(X, Y)` call found in train.py's loop")


def training_forward(tree: ast.Module | None) -> tuple[int, str] | None:
    """Where train.py's training step runs its model without the targets (`logits =
    model(X)`, the loss computed outside the model): the line and source of the first such
    call. None where some call of `model` outside evaluation passes inputs and targets
    (nanoGPT's `model(X, Y)`), or where train.py calls `model` nowhere outside evaluation
    (a function under `@torch.no_grad()`, a `with torch.no_grad():` block)."""
    if tree is None:
        return None
    calls = sorted(_training_calls(tree, evaluating=False), key=lambda c: (c.lineno, c.col_offset))
    if not calls or any(_is_model_call(call) for call in calls):
        return None
    return calls[0].lineno, ast.unparse(calls[0])


def _training_calls(node: ast.AST, evaluating: bool) -> Iterator[ast.Call]:
    """The `model(...)` calls under `node` outside evaluation (`_without_grad`)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        evaluating = evaluating or any(_without_grad(d) for d in node.decorator_list)
    elif isinstance(node, ast.With | ast.AsyncWith):
        evaluating = evaluating or any(_without_grad(item.context_expr) for item in node.items)
    elif (
        not evaluating
        and isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "model"
    ):
        yield node
    for child in ast.iter_child_nodes(node):
        yield from _training_calls(child, evaluating)


def _without_grad(node: ast.expr) -> bool:
    """`torch.no_grad()`, `no_grad`, `torch.inference_mode()` and the like."""
    func = node.func if isinstance(node, ast.Call) else node
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("no_grad", "inference_mode")


def _assumed(why: str) -> Loop:
    return Loop(True, f"{why}: assumed {NANOGPT_LOOP.how}", assumed=True)


def _from_assignment(
    node: ast.Assign, deleted: list[tuple[str, int]], backward: int | None
) -> Loop:
    """`logits, loss = model(X, Y)` keeps the logits unless train.py `del`s that name before
    the `backward` call's line; `out = model(X, Y)` keeps them in the tuple."""
    target = node.targets[0]
    where = f"train.py line {node.lineno}"
    if isinstance(target, ast.Tuple) and target.elts and _named(target.elts[0]):
        name = target.elts[0].id
        end = backward if backward is not None else 10**9
        if any(n == name and node.lineno < line < end for n, line in deleted):
            return Loop(False, f"{where} binds the logits to `{name}`, which train.py deletes")
        return Loop(True, f"{where} holds the logits in `{name}` through the backward")
    return Loop(True, f"{where} holds the model's output through the backward")


def _module_level(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node of train.py outside function and class bodies."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _named(node: ast.AST) -> TypeGuard[ast.Name]:
    return isinstance(node, ast.Name)


def _calls_backward(node: ast.AST) -> TypeGuard[ast.Call]:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "backward"
    )


def _is_model_call(node: ast.AST | None) -> bool:
    """`model(X, Y)`: the model called with inputs and targets."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "model"
        and len(node.args) + len(node.keywords) >= 2
    )


def _subscripted(node: ast.AST) -> ast.AST | None:
    return node.value if isinstance(node, ast.Subscript) else None


def _runs_model(function: ast.FunctionDef) -> bool:
    return any(_is_model_call(node) for node in ast.walk(function))


def _calls_helper(node: ast.AST, helpers: set[str]) -> bool:
    """`helper(...)` or `helper(...) / n`, `helper` a train.py function that runs the model."""
    call = node.left if isinstance(node, ast.BinOp) else node
    return (
        isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in helpers
    )
