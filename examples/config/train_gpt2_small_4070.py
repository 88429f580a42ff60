# GPT-2 small (124M) from scratch on one RTX 4070, tokens per iteration kept near nanoGPT's 0.5M
# $ python train.py config/train_gpt2_small_4070.py

wandb_log = False
dataset = 'openwebtext'

batch_size = 4
block_size = 1024
gradient_accumulation_steps = 128

n_layer = 12
n_head = 12
n_embd = 768

max_iters = 600000
lr_decay_iters = 600000
eval_interval = 1000
eval_iters = 200
log_interval = 10
weight_decay = 1e-1
