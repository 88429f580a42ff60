# 2**19 tokens per optimizer step, Chinchilla-ish 20 tokens per parameter
n_layer = 6
n_head = 8
n_embd = 64 * 8
batch_size = 2 ** 3
block_size = 1024
gradient_accumulation_steps = 2**19 // (batch_size * block_size)
max_iters = int(20 * 45e6) // 2**19
lr_decay_iters = max_iters
warmup_iters = max_iters // 50
learning_rate = 1e-3
min_lr = learning_rate / 10
eval_interval = max_iters // 10
