"""Values that depend only on the machine train.py runs on, answered for the target GPU.

nanoGPT's train.py picks its default dtype with
`'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else 'float16'`,
and forks pick `device` the same way. Read statically, such a value is unknown; but the
question the linter answers is "what happens on the target GPU", so these calls have answers:
CUDA is available, bf16 is what the profile says, MPS is not there. `target_calls` rewrites
them into literals before a value is evaluated; nothing is executed.
"""

from __future__ import annotations

import libcst as cst

from gptlint.facts.gpus import GpuProfile


def _dotted(node: cst.BaseExpression) -> str | None:
    """`torch.cuda.is_available` for that attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def machine_answers(gpu: GpuProfile) -> dict[str, bool | int | str]:
    """What each machine-only call returns on a one-GPU machine with `gpu`."""
    return {
        "torch.cuda.is_available": True,
        "torch.cuda.is_bf16_supported": gpu.bf16,
        "torch.cuda.device_count": 1,
        "torch.backends.mps.is_available": False,
        "torch.backends.mps.is_built": False,
    }


class _Answer(cst.CSTTransformer):
    def __init__(self, answers: dict[str, bool | int | str]) -> None:
        self.answers = answers
        self.used = False

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        name = _dotted(original.func)
        if original.args or name not in self.answers:
            return updated
        self.used = True
        value = self.answers[name]
        if isinstance(value, bool):
            return cst.Name("True" if value else "False")
        if isinstance(value, int):
            return cst.Integer(str(value))
        return cst.SimpleString(repr(value))


def target_calls(value: cst.BaseExpression, gpu: GpuProfile) -> tuple[cst.BaseExpression, bool]:
    """`value` with the machine-only calls replaced by their answers on `gpu`, and whether
    there was any."""
    answer = _Answer(machine_answers(gpu))
    visited = value.visit(answer)
    assert isinstance(visited, cst.BaseExpression)  # calls are replaced, never removed
    return visited, answer.used
