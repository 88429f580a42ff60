"""GPU profiles: what a memory or kernel check targets. Pure data, no torch."""

from __future__ import annotations

from dataclasses import dataclass, replace

from gptlint.facts.units import MIB

CUDA_CONTEXT_BYTES = 500 * MIB
"""CUDA context, kernel images and library handles of a PyTorch process (0.3-0.5 GiB measured
on recent drivers): the default of a profile's `context_bytes`, the estimate's term and the
simulation's modelled context where no figure for the card was found."""

DEFAULT_CONTEXT_SOURCE = "default"


@dataclass(frozen=True)
class GpuProfile:
    """One target card: the memory PyTorch can use on it, and what its kernels can do.

    `usable_mib` is `torch.cuda.get_device_properties(i).total_memory` (CUDA's
    `cudaDeviceProp.totalGlobalMem`) in whole MiB, as a real log of the card reports it; on
    data-centre cards it is less than `nvidia-smi`'s total. Where no such log was found the
    profile keeps `nvidia-smi`'s total, and its comment says so.

    `context_bytes` is the device memory a PyTorch process uses outside its caching allocator
    on this card (CUDA context, kernel images, library handles), `context_source` where that
    figure comes from ("default": `CUDA_CONTEXT_BYTES`, no figure found for the card).
    """

    name: str
    label: str
    usable_mib: int
    compute_capability: tuple[int, int]
    bf16: bool
    context_bytes: int = CUDA_CONTEXT_BYTES
    context_source: str = DEFAULT_CONTEXT_SOURCE

    @property
    def usable_bytes(self) -> int:
        return self.usable_mib * MIB

    @property
    def flash_attention(self) -> bool:
        """PyTorch's flash SDPA kernel needs sm80 or newer."""
        return self.compute_capability >= (8, 0)


PROFILES: dict[str, GpuProfile] = {
    p.name: p
    for p in (
        # nvidia-smi total; no PyTorch-reported figure found
        GpuProfile("rtx4070", "NVIDIA GeForce RTX 4070 (12 GB)", 12282, (8, 9), True),
        # source: songxf1024/CaPGNN main.py: PyTorch repr total_memory=12044MB (two RTX 3060s
        # in a server listing; the only PyTorch figure found for this card)
        GpuProfile("rtx3060-12gb", "NVIDIA GeForce RTX 3060 (12 GB)", 12044, (8, 6), True),
        # nvidia-smi total; no PyTorch-reported figure found
        GpuProfile("rtx4070-ti", "NVIDIA GeForce RTX 4070 Ti (12 GB)", 12282, (8, 9), True),
        # nvidia-smi total; no PyTorch-reported figure found
        GpuProfile("rtx4080", "NVIDIA GeForce RTX 4080 (16 GB)", 16376, (8, 9), True),
        # source: huggingface/transformers docs/source/en/debugging.md: PyTorch repr
        # total_memory=24268MB (also in a second, independent log); sources disagree by driver:
        # songxf1024/CaPGNN main.py shows 24259MB, another log 24575MB; the most common is kept
        GpuProfile("rtx3090", "NVIDIA GeForce RTX 3090 (24 GB)", 24268, (8, 6), True),
        # source: chenlb/knowledge src/llm/deploy/cuda-install-on-windows.md: PyTorch repr
        # total_memory=24563MB (Windows, WDDM, driver 572.70; nvidia-smi there: 24564MiB)
        GpuProfile("rtx4090", "NVIDIA GeForce RTX 4090 (24 GB)", 24563, (8, 9), True),
        # source: NVIDIA/nccl issue #1637: deviceQuery on two RTX 5090s, 33680457728 bytes
        # (32120 MiB; CUDA 12.8); another deviceQuery log shows 32117 MBytes
        GpuProfile("rtx5090", "NVIDIA GeForce RTX 5090 (32 GB)", 32120, (12, 0), True),
        # nvidia-smi total; no PyTorch-reported figure found
        GpuProfile("l4", "NVIDIA L4 (24 GB)", 23034, (8, 9), True),
        # source: mryab/efficient-dl-systems week01_intro/seminar.ipynb: PyTorch repr on Colab,
        # total_memory=15109MB (driver 460.32.03, 2022-23), 15102MB (535.104.05, 2024-25),
        # 15095MB (550.54.15, 2026); sources disagree by driver and 15109MB is the most common
        # (also in four other PyTorch logs found)
        GpuProfile("t4", "NVIDIA Tesla T4 (16 GB)", 15109, (7, 5), False),
        # source: bottlerocket-os/bottlerocket pull request #3873: deviceQuery on
        # NVIDIA A100-SXM4-40GB, 42298834944 bytes (40339.31 MiB, whole MiB kept)
        GpuProfile("a100-40gb", "NVIDIA A100 40GB", 40339, (8, 0), True),
        # nvidia-smi total; no PyTorch-reported figure found
        GpuProfile(
            "a100-80gb",
            "NVIDIA A100 80GB",
            81920,
            (8, 0),
            True,
            context_bytes=863 * MIB,
            context_source="a published nvidia-smi figure of a PyTorch process on an A100 80GB "
            "(2023 driver), as quoted in gptlint issue 26",
        ),
        # nvidia-smi total; no PyTorch-reported figure found
        GpuProfile("h100-80gb", "NVIDIA H100 80GB", 81559, (9, 0), True),
        # nvidia-smi total; no PyTorch-reported figure found
        GpuProfile("h200", "NVIDIA H200 (141 GB)", 143771, (9, 0), True),
    )
}

DEFAULT_GPU = "rtx4070"


def with_context(profile: GpuProfile, context_bytes: int | None, source: str) -> GpuProfile:
    """`profile` with the CUDA context `context_bytes` from `source` (a setting), or unchanged
    when `context_bytes` is None."""
    if context_bytes is None:
        return profile
    return replace(profile, context_bytes=context_bytes, context_source=source)


def get_profile(name: str) -> GpuProfile:
    """The profile called `name`; raises KeyError naming the known profiles."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        known = ", ".join(PROFILES)
        raise KeyError(f"unknown GPU profile {name!r} (known: {known})") from None
