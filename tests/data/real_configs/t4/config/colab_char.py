# Colab T4: no bf16, no flash attention
dataset = 'shakespeare_char'
dtype = 'float16'
compile = False
n_layer = 6
n_head = 6
n_embd = 384
batch_size = 32
block_size = 256
max_iters = 3000
lr_decay_iters = 3000
eval_interval = 250
