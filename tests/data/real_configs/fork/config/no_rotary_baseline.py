use_rotary = False
wandb_run_name = 'baseline-learned-pos'
max_iters = 20000
lr_decay_iters = 20000
