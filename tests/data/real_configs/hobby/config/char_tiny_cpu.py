# a tiny char model to check the pipeline on a laptop
out_dir = 'out-tiny'
dataset = 'shakespeare_char'
device = 'cpu'
compile = False
dtype = 'float32'
eval_iters = 20
log_interval = 1
block_size = 64
batch_size = 12
n_layer = 4
n_head = 4
n_embd = 128
max_iters = 2000
lr_decay_iters = 2000
warmup_iters = 100
dropout = 0.0
