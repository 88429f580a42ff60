# ~64M params on one FineWeb parquet shard, RTX 4070
dataset = 'fineweb'
n_layer = 12
n_head = 8
n_embd = 512
batch_size = 4
block_size = 1024
gradient_accumulation_steps = 128   # 4 * 128 * 1024 = 524,288 tokens per step
max_iters = 20000
lr_decay_iters = 20000
warmup_iters = 700
learning_rate = 6e-4
min_lr = 6e-5
eval_interval = 500
