wandb_log = True
if wandb_log:
    wandb_project = 'nanogpt-4070'
    wandb_run_name = 'char-6x384'
dataset = 'shakespeare_char'
n_layer = 6
n_head = 6
n_embd = 384
batch_size = 32
block_size = 256
max_iters = 5000
lr_decay_iters = 5000
eval_interval = 250
