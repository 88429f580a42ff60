# A 24-layer model trained from scratch across two machines with four GPUs each.
# On the first machine (the second one runs the same with --node_rank=1):
#   torchrun --nproc_per_node=4 --nnodes=2 --node_rank=0 --master_addr=192.168.1.10 --master_port=29500 train.py config/train_gpt2_2nodes.py
n_layer = 24
n_head = 16
n_embd = 1024
block_size = 1024
batch_size = 8
gradient_accumulation_steps = 8 * 8  # eight micro-steps on each of the eight processes
learning_rate = 2.5e-4
min_lr = 2.5e-5
warmup_iters = 3000
max_iters = 350000
lr_decay_iters = 350000
eval_interval = 2500
