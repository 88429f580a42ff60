"""A nanoGPT fork: grouped-query attention, rotary embeddings, a Muon option."""
import os
import time

import torch

from model import GPT, GPTConfig

out_dir = 'out'
eval_interval = 1000
log_interval = 10
eval_iters = 100
eval_only = False
always_save_checkpoint = True
init_from = 'scratch'
wandb_log = False
wandb_project = 'fork'
wandb_run_name = 'run'
dataset = 'fineweb'
gradient_accumulation_steps = 16
batch_size = 8
block_size = 1024
n_layer = 12
n_head = 12
n_kv_head = 4
n_embd = 768
vocab_size = 50304
use_rotary = True
rope_theta = 10000.0
dropout = 0.0
bias = False
optimizer = 'adamw'
muon_lr = 0.02
learning_rate = 6e-4
max_iters = 50000
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
decay_lr = True
warmup_iters = 1000
lr_decay_iters = 50000
min_lr = 6e-5
backend = 'nccl'
device = 'cuda'
dtype = 'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else 'float16'
compile = True
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str))]
exec(open('configurator.py').read())
config = {k: globals()[k] for k in config_keys}
