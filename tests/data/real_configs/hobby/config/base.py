# shared settings for the 8x512 ablations
dataset = 'fineweb'
n_layer = 8
n_head = 8
n_embd = 512
batch_size = 8
block_size = 512
gradient_accumulation_steps = 16
max_iters = 6000
lr_decay_iters = 6000
warmup_iters = 200
eval_interval = 500
