"""Accuracy of the memory check: simulated peaks against CUDA measurements, config by config.

Run: `python benchmarks/accuracy.py [--record results.json] [--gpu rtx4070] [--only TEXT]`.

With a CUDA GPU every config is measured (budget: the whole GPU) and simulated for the same GPU
(its compute capability picks the attention kernel), and the relative errors are printed;
`--record` writes the measured figures with the GPU name, torch and CUDA versions and the CUDA
context. Without a GPU only the simulated column is printed, for the `--gpu` profile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gptlint.facts.gpus import GpuProfile, get_profile
from gptlint.facts.units import MIB
from gptlint.runmodel.trainingrun import ModelShape, StepSpec
from pytest_gptcfg.engine.check import (
    MemoryResult,
    analytical_estimate,
    check_memory,
    import_torch,
)

torch = import_torch()

GIB = 1024**3


@dataclass(frozen=True)
class Case:
    """One row of the matrix."""

    label: str
    shape: ModelShape
    batch_size: int
    block_size: int
    dtype: str = "bfloat16"
    compile: bool = False

    def spec(self) -> StepSpec:
        return StepSpec(
            self.shape, self.batch_size, self.block_size, 8, self.dtype, compile=self.compile
        )


def _shape(
    layers: int,
    heads: int,
    width: int,
    block: int,
    vocab: int = 50304,
    bias: bool = False,
    dropout: float = 0.0,
) -> ModelShape:
    return ModelShape(layers, heads, width, block, vocab, bias, dropout)


CASES = [
    Case("shakespeare-char 6/6/384 T256 b64", _shape(6, 6, 384, 256, 65, dropout=0.2), 64, 256),
    Case("gpt2-124M b12 T1024", _shape(12, 12, 768, 1024), 12, 1024),
    Case("gpt2-124M b8 T1024 compile", _shape(12, 12, 768, 1024), 8, 1024, compile=True),
    Case("seed 12/12/576 b16 T1024", _shape(12, 12, 576, 1024), 16, 1024),
    Case("seed 12/12/576 b16 T1024 compile", _shape(12, 12, 576, 1024), 16, 1024, compile=True),
    Case("12/8/512 b16 T1024", _shape(12, 8, 512, 1024), 16, 1024),
    Case("12/12/432 hd36 b8 T1024", _shape(12, 12, 432, 1024), 8, 1024),
    Case("12/12/720 hd60 b8 T1024", _shape(12, 12, 720, 1024), 8, 1024),
    Case("12/6/768 hd128 b8 T1024", _shape(12, 6, 768, 1024), 8, 1024),
    Case("4/2/520 hd260 (math) b4 T512", _shape(4, 2, 520, 512), 4, 512),
    Case("4/4/256 b8 T2048", _shape(4, 4, 256, 2048), 8, 2048),
    Case("16/8/512 b8 T2048", _shape(16, 8, 512, 2048), 8, 2048),
    Case("8/8/512 b16 T512 fp16", _shape(8, 8, 512, 512), 16, 512, dtype="float16"),
    Case("8/8/512 b16 T512 fp32", _shape(8, 8, 512, 512), 16, 512, dtype="float32"),
    Case("6/6/384 bias dropout0.1 b8 T1024",
         _shape(6, 6, 384, 1024, bias=True, dropout=0.1), 8, 1024),
    Case("2/2/128 vocab65 b64 T256 fp32", _shape(2, 2, 128, 256, 65), 64, 256, dtype="float32"),
    Case("6/6/384 vocab65 b128 T256 fp16 dropout0.1",
         _shape(6, 6, 384, 256, 65, dropout=0.1), 128, 256, dtype="float16"),
    Case("gpt2-medium 24/16/1024 b4 T1024", _shape(24, 16, 1024, 1024), 4, 1024),
]  # fmt: skip


def device_profile(index: int = 0) -> GpuProfile:
    """A profile describing the GPU at `index`, so the simulation targets the measured card."""
    props = torch.cuda.get_device_properties(index)
    return GpuProfile(
        name="local",
        label=props.name,
        usable_mib=props.total_memory // MIB,
        compute_capability=torch.cuda.get_device_capability(index),
        bf16=torch.cuda.is_bf16_supported(),
    )


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / GIB:.2f}"


def _error(simulated: int, measured: int | None) -> str:
    if not measured:
        return "-"
    return f"{(simulated - measured) / measured:+.1%}"


def _measured(result: MemoryResult | None) -> dict[str, object] | None:
    if result is None:
        return None
    keys = ("peak_allocated_bytes", "peak_reserved_bytes", "context_bytes", "oom", "fits")
    return {k: getattr(result, k) for k in keys} | {"attention_kernel": result.attention_kernel}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write the CUDA measurements to this JSON")
    parser.add_argument("--gpu", default="rtx4070", help="profile simulated when there is no GPU")
    parser.add_argument("--only", default="", help="run only configs whose label contains this")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    profile = device_profile() if cuda else get_profile(args.gpu)
    budget = profile.usable_bytes
    print(f"torch {torch.__version__}, target {profile.label}, budget {budget / GIB:.2f} GiB")
    if not cuda:
        print("no CUDA GPU here: measured columns need one (simulation only)")
    header = (
        f"{'config':42} {'kernel':9} {'sim alloc':>9} {'sim resv':>8} {'meas alloc':>10} "
        f"{'meas resv':>9} {'err alloc':>9} {'err resv':>8} {'estimate':>8} {'sim s':>6}"
    )
    print(header + "\n" + "-" * len(header))
    rows = []
    for case in CASES:
        if args.only not in case.label:
            continue
        spec = case.spec()
        start = time.perf_counter()
        simulated = check_memory(spec, profile, budget, mode="simulate")
        seconds = time.perf_counter() - start
        measured, error = None, None
        if cuda:
            try:
                measured = check_memory(spec, profile, budget, mode="cuda")
            except Exception as exc:  # one failing config must not end a GPU session's run
                error = f"{type(exc).__name__}: {exc}"
                print(f"{case.label:42} CUDA run failed: {error}")
        meas_alloc = measured.peak_allocated_bytes if measured else None
        meas_resv = measured.peak_reserved_bytes if measured else None
        if measured is not None and measured.oom:
            meas_alloc = meas_resv = None
        print(
            f"{case.label:42} {simulated.attention_kernel:9} "
            f"{_gib(simulated.peak_allocated_bytes):>9} {_gib(simulated.peak_reserved_bytes):>8} "
            f"{'OOM' if measured and measured.oom else _gib(meas_alloc):>10} {_gib(meas_resv):>9} "
            f"{_error(simulated.peak_allocated_bytes, meas_alloc):>9} "
            f"{_error(simulated.peak_reserved_bytes, meas_resv):>8} "
            f"{_gib(analytical_estimate(spec, profile)):>8} {seconds:6.2f}"
        )
        rows.append(
            {
                "config": case.label,
                "spec": spec.to_record(),
                "measured": _measured(measured),
                "measure_error": error,
                "simulated": _measured(simulated),
            }
        )
    print(
        "sizes in GiB; err = (simulated - measured) / measured; estimate = gptlint's analytical"
        " tensors at the peak (no allocator overhead, no context)"
    )
    if args.record is not None:
        if not cuda:
            print("--record writes CUDA measurements: none were taken without a GPU")
            return 1
        record = {
            "gpu": torch.cuda.get_device_name(0),
            "compute_capability": list(torch.cuda.get_device_capability(0)),
            "bf16": torch.cuda.is_bf16_supported(),
            "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda,
            "context_bytes": max(
                (r["measured"]["context_bytes"] for r in rows if r["measured"]), default=None
            ),
            "budget_bytes": budget,
            "results": rows,
        }
        args.record.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
