n_layer, n_head, n_embd = 6, 6, 384
batch_size: int = 16
block_size: int = 256
dataset = 'shakespeare_char'
max_iters = 4000
lr_decay_iters = 4000
warmup_iters = 100
eval_interval = 250
