import time

dataset = 'fineweb'
n_layer = 8
n_head = 8
n_embd = 512
batch_size = 6
block_size = 1024
gradient_accumulation_steps = 64
max_iters = 10000
lr_decay_iters = max_iters
warmup_iters = 200
eval_interval = 250
stamp = time.strftime('%Y%m%d-%H%M%S')
wandb_log = True
wandb_project = 'fineweb-4070'
wandb_run_name = f"fw-{n_layer}x{n_embd}-{stamp}"
out_dir = f'out/{wandb_run_name}'
