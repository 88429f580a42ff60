"""Running an Inductor wrapper's call() on stand-in buffers: what it allocates and frees.

The wrappers here are written in the shapes Inductor's releases generate (a module-level
`call(args)` before torch 2.8, `Runner.call(self, args)` after; `assert_size_stride` with and
without a message; multi-output fallback ops), so the reading is checked on the grammar, not
on one release's text.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from pytest_gptcfg.engine.wrappercall import (  # noqa: E402
    Buffer,
    Storage,
    TensorMeta,
    WrapperRun,
    WrapperUnreadable,
    run_call,
)

HEADER = """
import torch
from torch._inductor.async_compile import AsyncCompile
from torch._inductor.select_algorithm import extern_kernels
aten = torch.ops.aten
assert_size_stride = torch._C._dynamo.guards.assert_size_stride
empty_strided_cpu = torch._C._dynamo.guards._empty_strided_cpu
reinterpret_tensor = torch._C._dynamo.guards._reinterpret_tensor
async_compile = AsyncCompile()
cpp_fused_0 = async_compile.cpp_pybinding(['float*'], r'''never compiled''')
async_compile.wait(globals())
del async_compile
"""

BODY = """
    a, b = args
    args.clear()
    assert_size_stride(a, (4, 8), (8, 1))
    buf0 = empty_strided_cpu((4, 8), (8, 1), torch.float32)
    buf1 = empty_strided_cpu((4, 8), (8, 1), torch.bfloat16)
    cpp_fused_0(a, buf0, buf1)
    del a
    buf2 = empty_strided_cpu((4, 4), (4, 1), torch.float32)
    extern_kernels.mm(buf0, reinterpret_tensor(b, (8, 4), (1, 8), 0), out=buf2)
    buf3 = buf0; del buf0  # reuse
    cpp_fused_0(buf3, buf2)
    del buf2
    return (buf1, reinterpret_tensor(buf3, (32,), (1,), 0), )
"""

INDENTED = "\n".join("    " + line if line else line for line in BODY.splitlines())
AS_METHOD = HEADER + "class Runner:\n    def call(self, args):" + INDENTED + "\n"
AS_FUNCTION = HEADER + "def call(args):" + BODY


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> TensorMeta:
    stride, step = [], 1
    for size in reversed(shape):
        stride.insert(0, step)
        step *= size
    return TensorMeta(tuple(shape), tuple(stride), dtype)


def _run(wrapper: str, metas: list[TensorMeta], prefix: str = "g:") -> WrapperRun:
    run = WrapperRun()
    args = [Buffer(Storage(run, f"in:{k}", 0, local=False), m) for k, m in enumerate(metas)]
    return run_call(wrapper, run, prefix, args)


@pytest.mark.parametrize("wrapper", [AS_METHOD, AS_FUNCTION], ids=["method", "function"])
def test_buffers_are_freed_when_their_last_name_goes(wrapper):
    run = _run(wrapper, [_meta(4, 8), _meta(4, 8)])
    assert run.events == [
        ["alloc", "g:buf0", 128, "float32"],
        ["alloc", "g:buf1", 64, "bfloat16"],
        ["release", "in:0"],  # `del a`: the graph's last reference to an input
        ["alloc", "g:buf2", 64, "float32"],
        ["free", "g:buf2"],  # `del buf2`
        ["release", "in:1"],  # `b` goes at the return; buf0 lives on as buf3's view
    ]
    assert run.returned == ["g:buf1", "g:buf0"]
    assert run.returned_meta[1].shape == (32,)
    assert run.unknown == set()


MULTI_OUTPUT = (
    HEADER
    + """
def call(args):
    q, k, v = args
    args.clear()
    buf0 = torch.ops.aten._scaled_dot_product_flash_attention.default(q, k, v, 0.0, True)
    buf1 = buf0[0]
    buf2 = buf0[1]
    del buf0
    buf3 = torch.ops.aten.view.default(buf1, [2, 4, 16])
    return (buf3, buf2, )
"""
)


def test_a_fallback_ops_outputs_are_allocated_by_it_and_views_share_their_base():
    qkv = _meta(2, 2, 4, 8, dtype=torch.bfloat16)
    run = _run(MULTI_OUTPUT, [qkv, qkv, qkv])
    allocs = [e for e in run.events if e[0] == "alloc"]
    # the output (B, H, T, D) in bf16 and the logsumexp (B, H, T) in fp32, then the op's
    # small outputs (philox seed and offset, empty sequence lengths)
    assert allocs[0] == ["alloc", "g:buf0", 2 * 2 * 4 * 8 * 2, "bfloat16"]
    assert allocs[1] == ["alloc", "g:buf0_1", 2 * 2 * 4 * 4, "float32"]
    # the view aliases its input (the op's schema says so): no allocation of its own
    assert run.returned[0] == "g:buf0"
    assert run.returned_meta[0].shape == (2, 4, 16)
    assert run.returned[1] == "g:buf0_1"
    # outputs nobody names are freed when the tuple goes (`del buf0`)
    freed = [e[1] for e in run.events if e[0] == "free"]
    assert set(freed) == {e[1] for e in allocs[2:]}


def test_an_unrecognised_allocator_whose_result_is_bound_refuses_the_plan():
    wrapper = (
        HEADER
        + """
from torch._inductor.runtime import new_allocator
def call(args):
    a, = args
    args.clear()
    buf0 = new_allocator((4, 8), torch.float32)
    cpp_fused_0(a, buf0)
    return (buf0, )
"""
    )
    with pytest.raises(WrapperUnreadable, match="new_allocator"):
        _run(wrapper, [_meta(4, 8)])


def test_an_unrecognised_call_whose_result_is_unused_is_recorded_and_harmless():
    wrapper = (
        HEADER
        + """
from torch._inductor.hooks import run_intermediate_hooks
def call(args):
    a, = args
    args.clear()
    buf0 = empty_strided_cpu((4, 8), (8, 1), torch.float32)
    run_intermediate_hooks('buf0', buf0)
    return (buf0, )
"""
    )
    run = _run(wrapper, [_meta(4, 8)])
    assert run.unknown == {"run_intermediate_hooks"}
    assert run.returned == ["g:buf0"]


@pytest.mark.parametrize(
    "wrapper, why",
    [
        ("def call(args):\n    return (", "does not parse"),
        (HEADER, r"0 call\(\) functions"),
        (
            HEADER + "def call(args):\n    buf0 = reinterpret_tensor(None, (1,), (1,), 0)\n",
            "not allocated",
        ),
        (HEADER + "def call(args):\n    raise KeyError('x')\n", "KeyError"),
    ],
    ids=["syntax", "no call", "view of nothing", "call fails"],
)
def test_a_wrapper_that_cannot_be_run_says_why(wrapper, why):
    with pytest.raises(WrapperUnreadable, match=why):
        _run(wrapper, [])
