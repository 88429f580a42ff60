"""nanochat's COMPUTE_DTYPE (nanochat/common.py `_detect_compute_dtype`): `NANOCHAT_DTYPE`
when set (one of the checkout's `_DTYPE_MAP` names, else a KeyError at import), otherwise
bfloat16 on a CUDA card of compute capability 8.0 or newer and float32 below it."""

from __future__ import annotations

from gptlint.facts.gpus import GpuProfile
from gptlint.nanochat.checkout import Checkout
from gptlint.nanochat.runscript import Invocation, Unknown
from gptlint.runmodel.trainingrun import Problem


def compute_dtype(
    invocation: Invocation, checkout: Checkout, gpu: GpuProfile
) -> tuple[str, str] | Problem:
    """The dtype and why, or what stops nanochat from choosing one."""
    env = invocation.env_value("NANOCHAT_DTYPE")
    if isinstance(env, Unknown):
        return Problem("NANOCHAT_DTYPE", f"NANOCHAT_DTYPE is not known: {env.reason}", unknown=True)
    if env is not None:
        names = checkout.dtype_names()
        if isinstance(names, Unknown):
            return Problem("NANOCHAT_DTYPE", f"NANOCHAT_DTYPE={env}: {names.reason}", unknown=True)
        if env not in names:
            return Problem(
                "NANOCHAT_DTYPE",
                f"NANOCHAT_DTYPE={env}: nanochat/common.py knows only {', '.join(names)} "
                "(KeyError when it is imported)",
            )
        return env, f"NANOCHAT_DTYPE={env}"
    major, minor = gpu.compute_capability
    if gpu.compute_capability >= (8, 0):
        return "bfloat16", f"auto: {gpu.name} is SM {major}{minor} (bf16 supported)"
    return "float32", f"auto: {gpu.name} is SM {major}{minor} (pre-Ampere: float32)"
