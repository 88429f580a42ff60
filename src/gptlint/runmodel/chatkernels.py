"""Which attention kernel a nanochat step gets on a GPU, and whether its `--fp8` applies
(no torch): the two choices that change what the step saves for its backward.

From nanochat's code (karpathy/nanochat 92d63d4): `nanochat/flash_attention.py` uses
FlashAttention-3 only when it loads and COMPUTE_DTYPE is bf16, else PyTorch's SDPA;
`scripts/base_train.py` converts Linears to `nanochat/fp8.py`'s `Float8Linear` under `--fp8`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptlint.facts.gpus import GpuProfile
from gptlint.facts.kinds import AttentionKernel
from gptlint.runmodel.chatrun import ChatStep
from gptlint.runmodel.estimate import sdpa_kernel

FP8_MIN_CAPABILITY = (8, 9)
"""`torch._scaled_mm` (what `Float8Linear` calls) runs on compute capability 8.9 (Ada) and
9.0+; below, it raises at the first forward. nanochat's `--fp8` help says "requires H100+"."""
FP8_ALIGNMENT = 16
FP8_MIN_DIM = 128
"""base_train's `fp8_module_filter`: a Linear is converted only when both dimensions are
multiples of 16 and the smaller is at least 128 (ve_gate, 12 -> Hkv, and smear_gate, 24 -> 1,
never are)."""


@dataclass(frozen=True)
class ChatAttention:
    """What computes a step's attention: FlashAttention-3 in every layer (`fa3`), else SDPA
    with `full` for full-context layers and `window` for sliding-window ones (None where the
    pattern leaves none); `reason` says why, in words."""

    fa3: bool
    full: AttentionKernel
    window: AttentionKernel | None
    reason: str

    @property
    def label(self) -> str:
        """`FlashAttention-3`, or `SDPA: flash attention (full layers), memory-efficient
        attention (sliding-window layers)`."""
        if self.fa3:
            return "FlashAttention-3"
        if self.window is None or self.full == self.window:
            return f"SDPA: {self.full.label}"
        return f"SDPA: {self.full.label} (full layers), {self.window.label} (sliding-window layers)"


def uses_fa3(step: ChatStep, gpu: GpuProfile) -> bool:
    """FlashAttention-3 on a Hopper card (compute capability 9.x) with bf16 compute.

    `_load_flash_attention_3` loads `varunneal/flash-attention-3` from the Hugging Face kernels
    hub when the major capability is 9; on other cards it tries `kernels-community/flash-attn3`,
    which loads only where the hub has a build for that machine's torch and CUDA (nanochat's
    comment names Ampere and Ada builds; Blackwell falls back). That is a fact of the machine,
    not of the card, so only Hopper is taken as FA3 here; elsewhere the estimate is SDPA's.
    The memory differs only by SDPA's sliding-window bias (`window_bias_bytes`): both save
    q, k, v, the output and an fp32 logsumexp. `_resolve_use_fa3` then requires bf16."""
    return gpu.compute_capability[0] == 9 and step.dtype == "bfloat16"


def masked_sdpa_kernel(
    compute_capability: tuple[int, int], half: bool, head_dim: int
) -> AttentionKernel:
    """SDPA's kernel for a call with an explicit `attn_mask`, which rules out the flash
    backend: memory-efficient where it runs (sm50+, head_dim a multiple of 8 in 16 bit, 4 in
    fp32), else math. The plugin's simulation takes the same choice."""
    aligned = head_dim % (8 if half else 4) == 0
    if compute_capability >= (5, 0) and aligned:
        return AttentionKernel.EFFICIENT
    return AttentionKernel.MATH


def window_kernel(step: ChatStep, gpu: GpuProfile) -> AttentionKernel:
    """SDPA's kernel for a sliding-window layer: `_sdpa_attention` passes an explicit bool
    mask there (`attn_mask=mask`): `masked_sdpa_kernel`."""
    return masked_sdpa_kernel(gpu.compute_capability, step.dtype != "float32", step.shape.head_dim)


def chat_attention(step: ChatStep, gpu: GpuProfile) -> ChatAttention:
    """The attention kernels of `step` on `gpu` (see `uses_fa3`, `window_kernel`); full
    layers use `is_causal=True`, which SDPA serves as it serves nanoGPT (`sdpa_kernel`)."""
    if uses_fa3(step, gpu):
        reason = "FlashAttention-3: a Hopper GPU with bf16 compute"
        return ChatAttention(True, AttentionKernel.FLASH, AttentionKernel.FLASH, reason)
    half = step.dtype != "float32"
    full = sdpa_kernel(gpu.compute_capability, half, step.shape.head_dim, 0.0)
    windowed = min(step.shape.window_sizes) < step.shape.seq_len
    window = window_kernel(step, gpu) if windowed else None
    why = (
        "FlashAttention-3 needs bf16 compute"
        if gpu.compute_capability[0] == 9
        else "FlashAttention-3 is taken only on Hopper (compute capability 9.x)"
    )
    reason = f"SDPA: {why}"
    if windowed:
        reason += "; sliding-window layers pass an explicit mask, which flash cannot take"
    return ChatAttention(False, full, window, reason)


@dataclass(frozen=True)
class Fp8Use:
    """Whether `--fp8` converts the step's Linears (`applies`), and why, in words; `fails`
    when the run asks for fp8 on a card whose `_scaled_mm` rejects it."""

    requested: bool
    applies: bool
    fails: bool
    reason: str


def fp8_use(step: ChatStep, gpu: GpuProfile) -> Fp8Use:
    """`--fp8` on a CUDA target: base_train converts the Linears (it ignores the flag only off
    CUDA); `_scaled_mm` then needs compute capability 8.9 or newer, else the first forward
    raises. Evaluation (`training=False`) runs the Linears unconverted (`disable_fp8`)."""
    if not step.fp8:
        return Fp8Use(False, False, False, "fp8 not requested")
    if not step.training:
        return Fp8Use(True, False, False, "evaluation runs the bf16 Linears (disable_fp8)")
    if gpu.compute_capability < FP8_MIN_CAPABILITY:
        major, minor = gpu.compute_capability
        reason = f"torch._scaled_mm needs compute capability 8.9+, {gpu.name} has {major}.{minor}"
        return Fp8Use(True, False, True, reason)
    return Fp8Use(True, True, False, "Float8Linear for Linears with dims % 16 == 0, min dim >= 128")


def fp8_linear(in_features: int, out_features: int) -> bool:
    """Whether base_train's filter converts a Linear of these dimensions."""
    aligned = in_features % FP8_ALIGNMENT == 0 and out_features % FP8_ALIGNMENT == 0
    return aligned and min(in_features, out_features) >= FP8_MIN_DIM
