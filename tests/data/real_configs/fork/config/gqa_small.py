n_layer = 8
n_head = 8
n_kv_head = 2
n_embd = 512
use_rotary = True
rope_theta = 50000.0
max_iters = 20000
lr_decay_iters = 20000
