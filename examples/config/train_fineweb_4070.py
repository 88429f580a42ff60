# Train a GPT-2-style model on one FineWeb parquet file, on a 12 GB RTX 4070.
# $ python train.py config/train_fineweb_4070.py
# ~125M parameters; batch 16 x block 1024 should fit easily in ~10.5 GB.

out_dir = 'out-fineweb'
eval_interval = 500
eval_iters = 100
log_interval = 10

wandb_log = False
wandb_project = 'fineweb'
wandb_run_name = 'gpt-512'

dataset = 'fineweb'
gradient_accumulation_steps = 32
batch_size = 16
block_size = 1024

n_layer = 12
n_head = 12
n_embd = 512
dropout = 0.0

learning_rate = 6e-4
max_iters = 20000
lr_decay_iters = max_iters
min_lr = learning_rate / 10
warmup_iters = 500
