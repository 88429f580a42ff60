# the run that crashed: 512 is not divisible by 12
n_layer = 12
n_head = 12
n_embd = 512  # planted: GPT101
dropout = 0.0
batch_size = 16
block_size = 1024
gradient_accumulation_steps = 32
max_iters = 10000
lr_decay_iters = 10000
eval_interval = 500
