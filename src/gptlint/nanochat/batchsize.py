"""base_train's total batch size when `--total-batch-size=-1`: the scaling-law value
(base_train.py, "Use scaling laws to determine the optimal training horizon"), reproduced
exactly: target tokens `int(ratio * N)` for the model's scaling parameters N, the d12
reference horizon `ratio * N(d12)` built with the same flags, `B_REF * (D / D_REF) ** 0.383`
rounded to the nearest power of two."""

from __future__ import annotations

import math

from gptlint.nanochat.model import scaling_params
from gptlint.runmodel.chatrun import ChatShape
from gptlint.runmodel.trainingrun import Problem

B_REF = 2**19
"""The optimal batch size at d12 in tokens (`B_REF`)."""
REFERENCE_DEPTH = 12
"""`d12_ref = build_model_meta(12)`."""
EXPONENT = 0.383
"""Bopt ∝ D^0.383 (the Power Lines paper, as base_train cites it)."""


def auto_total_batch_size(shape: ChatShape, reference: ChatShape, ratio: float) -> int | Problem:
    """The auto-computed total batch size, or the error base_train stops on."""
    horizon = ratio * scaling_params(shape)
    if not math.isfinite(horizon):
        error = "ValueError" if math.isnan(horizon) else "OverflowError"
        return Problem(
            "target_param_data_ratio",
            f"--target-param-data-ratio={ratio}: base_train's int(ratio * params) raises {error}",
        )
    target_tokens = int(horizon)
    d_ref = ratio * scaling_params(reference)
    if d_ref == 0:
        return Problem(
            "target_param_data_ratio",
            f"--target-param-data-ratio={ratio} with --total-batch-size=-1: base_train divides "
            "by the d12 reference horizon ratio * params, which is 0 (ZeroDivisionError)",
        )
    predicted = B_REF * (target_tokens / d_ref) ** EXPONENT
    if not isinstance(predicted, float) or predicted <= 0:
        return Problem(
            "target_param_data_ratio",
            f"--target-param-data-ratio={ratio}: the predicted batch size {predicted} has no "
            "log2 (base_train's math.log2 raises)",
        )
    exponent = round(math.log2(predicted))
    if exponent < 0:
        return Problem("total_batch_size", f"the auto total batch size 2**{exponent} is < 1 token")
    return int(2**exponent)
