"""Test data: a nanochat-like common.py, the compute dtypes it knows."""

import os

_DTYPE_MAP = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
COMPUTE_DTYPE = _DTYPE_MAP[os.environ.get("NANOCHAT_DTYPE", "float32")]
