# GPT-2 medium-ish from scratch on 2 nodes of 4 GPUs each
# $ torchrun --nproc_per_node=4 --nnodes=2 --node_rank=0 --master_addr=10.0.0.1 --master_port=1234 train.py config/train_gpt2_2nodes.py
n_layer = 24
n_head = 16
n_embd = 1024
batch_size = 8
block_size = 1024
gradient_accumulation_steps = 8 * 8
max_iters = 400000
lr_decay_iters = 400000
warmup_iters = 4000
learning_rate = 3e-4
min_lr = 3e-5
eval_interval = 2000
