# pick up the fineweb run and train for longer
init_from = 'resume'
out_dir = 'out/fw-small'
max_iters = 40000
lr_decay_iters = 40000
eval_interval = 500
