"""Test data: a nanochat-like common.py: the compute dtype (NANOCHAT_DTYPE, else bf16 on an
sm80+ CUDA card and fp32 elsewhere) and print0."""

import os

import torch

_DTYPE_MAP = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
_TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _compute_dtype():
    name = os.environ.get("NANOCHAT_DTYPE")
    if name is not None:
        return _TORCH_DTYPES[_DTYPE_MAP[name]]
    if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0):
        return torch.bfloat16
    return torch.float32


COMPUTE_DTYPE = _compute_dtype()


def print0(*args, **kwargs):
    """print on rank 0 only."""
    if int(os.environ.get("RANK", 0)) == 0:
        print(*args, **kwargs)
