"""Helpers shared by the sweep scripts (not a config)."""
import math

TOKENS_PER_STEP = 2**19


def accumulation_for(batch_size, block_size):
    return TOKENS_PER_STEP // (batch_size * block_size)


def cosine(it, total):
    return 0.5 * (1 + math.cos(math.pi * it / total))
