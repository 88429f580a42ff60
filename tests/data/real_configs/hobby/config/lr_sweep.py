import sys

# python train.py config/lr_sweep.py 3e-4
lr = float(sys.argv[-1]) if len(sys.argv) > 2 else 3e-4
learning_rate = lr
min_lr = lr / 10
out_dir = f'out-lr{lr:g}'
n_layer = 6
n_head = 6
n_embd = 384
batch_size = 8
block_size = 512
max_iters = 3000
lr_decay_iters = 3000
eval_interval = 300
