try:
    import torch
    dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
except ImportError:
    dtype = 'float32'  # planted: GPT503 (dtype depends on the machine the config runs on)

n_layer = 6
n_head = 6
n_embd = 384
batch_size = 16
block_size = 512
max_iters = 2000
lr_decay_iters = 2000
warmup_iters = 100
eval_interval = 200
