# ~77M parameters, RTX 4070 12 GB
n_layer = 12
n_head = 12
n_embd = 576
dropout = 0.0
batch_size = 16  # planted: GPT501
block_size = 1024
gradient_accumulation_steps = 32
max_iters = 10000
lr_decay_iters = 10000
eval_interval = 500
compile = False  # eager while debugging: the fused loss is not there to save memory
