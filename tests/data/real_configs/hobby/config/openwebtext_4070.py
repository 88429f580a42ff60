# GPT-2 small (124M) on a single RTX 4070: small micro-batches, lots of accumulation
batch_size = 4
block_size = 1024
gradient_accumulation_steps = 40 * 3
max_iters = 100000
lr_decay_iters = 100000
eval_interval = 1000
compile = True
