"""The caching allocator's sizes: what `memory_allocated` counts for one fresh request."""

from __future__ import annotations

import pytest

from gptlint.facts.cudablocks import allocation_size, fresh_block_size, round_size

MIB = 1 << 20


@pytest.mark.parametrize(
    ("request_bytes", "block"),
    [
        (1, 512),  # the smallest block
        (6400, 6656),  # a 1600-wide fp32 bias: rounded to 512 bytes
        (9_437_184, 9_437_184),  # 9 MiB from a 20 MiB segment, the rest split off
        (154_533_888, 155_189_248),  # GPT-2's fp32 wte: the 0.6 MiB rest is not split off
        (40_960_000, 41_943_040),  # gpt2-xl's c_fc weight takes its whole 2 MiB-rounded segment
        (20 * MIB - 512, 20 * MIB),
        (20 * MIB + 1, 20 * MIB + 512),  # 2 MiB - 512 left over: split
    ],
)
def test_a_fresh_block_is_the_rounded_request_or_its_whole_segment(request_bytes, block):
    assert fresh_block_size(request_bytes) == block


def test_segments_follow_the_pools():
    assert allocation_size(round_size(1)) == 2 * MIB
    assert allocation_size(round_size(MIB + 1)) == 20 * MIB
    assert allocation_size(round_size(10 * MIB)) == 10 * MIB
    assert allocation_size(round_size(10 * MIB + 1)) == 12 * MIB
