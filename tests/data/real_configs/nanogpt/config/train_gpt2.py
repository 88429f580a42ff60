# Reproduce GPT-2 small (124M) on OpenWebText with one machine of eight A100s (40 GB each).
# Start it like this and come back in a few days:
#   torchrun --standalone --nproc_per_node=8 train.py config/train_gpt2.py

wandb_log = True
wandb_project = 'openwebtext'
wandb_run_name = 'gpt2-small-repro'

# about half a million tokens per step:
# 12 sequences x 1024 tokens x 5 micro-steps x 8 processes = 491,520
batch_size = 12
block_size = 1024
gradient_accumulation_steps = 5 * 8

# 600k steps of ~0.5M tokens: roughly 300B tokens in total
max_iters = 600000
lr_decay_iters = 600000

# how often to evaluate and print
eval_interval = 1000
eval_iters = 200
log_interval = 10

weight_decay = 0.1
