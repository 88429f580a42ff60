def tokens_per_step(batch_size, block_size, accum):
    return batch_size * block_size * accum
