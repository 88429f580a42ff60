import time

# Adapt the biggest GPT-2 to the works of Shakespeare with a short, gentle run.
init_from = 'gpt2-xl'  # start from OpenAI's 1.5B checkpoint
dataset = 'shakespeare'
out_dir = 'out-bard-finetune'

# logging: off by default, pass --wandb_log=True to switch it on
wandb_log = False
wandb_project = 'bard'
wandb_run_name = 'xl-bard-' + str(time.time())

# evaluate often; the whole run is only a few dozen steps
eval_interval = 4
eval_iters = 50
always_save_checkpoint = False  # keep a checkpoint only when val loss drops

# tokens per optimizer step: 1 sequence x 1024 tokens x 32 micro-steps = 32,768;
# the corpus is about 300k tokens, so one pass takes roughly 9 steps
batch_size = 1
gradient_accumulation_steps = 32
max_iters = 25

# small learning rate, held flat for the whole run
learning_rate = 2e-5
decay_lr = False
