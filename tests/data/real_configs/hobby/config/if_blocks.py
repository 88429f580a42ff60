import os

small = os.environ.get('SMALL') == '1'
if small:
    n_layer = 4
    n_head = 4
    n_embd = 256
else:
    n_layer = 8  # planted: GPT503 (which branch runs is only known at run time)
    n_head = 8
    n_embd = 512

batch_size = 8 if small else 4
block_size = 512
max_iters = 3000
lr_decay_iters = 3000
eval_interval = 250
