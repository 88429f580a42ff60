init_from = 'resume'
out_dir = 'out/fw-small'
eval_only = True
eval_iters = 400
batch_size = 8
