# A tiny character-level model of Shakespeare: trains in minutes, handy for checking that
# everything runs end to end (also on a laptop).

out_dir = 'out-bard-chars'
eval_interval = 200  # the model overfits quickly, so look at val loss often
eval_iters = 100
log_interval = 20

# the data set is small and val loss will turn up; write checkpoints only on improvement
always_save_checkpoint = False

wandb_log = False  # set True (or --wandb_log=True) to log the run
wandb_project = 'bard-chars'
wandb_run_name = 'tiny-char-gpt'

dataset = 'shakespeare_char'
batch_size = 64
block_size = 256  # each sample sees the last 256 characters
gradient_accumulation_steps = 1

# six layers of six heads, 384 wide
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2

learning_rate = 1e-3  # a model this small tolerates a high rate
max_iters = 4000
lr_decay_iters = 4000  # decay over the whole run
min_lr = 1e-4  # a tenth of the peak
beta2 = 0.99  # few tokens per step, so average the second moment over longer
warmup_iters = 100

# for a CPU-only machine, uncomment:
# device = 'cpu'
# compile = False
