# character-level enwik8; prepare.py writes data/enwik8_char/meta.pkl
dataset = 'enwik8_char'
n_layer = 8
n_head = 8
n_embd = 512
batch_size = 32
block_size = 512
gradient_accumulation_steps = 2
dropout = 0.1
max_iters = 30000
lr_decay_iters = 30000
warmup_iters = 500
eval_interval = 1000
