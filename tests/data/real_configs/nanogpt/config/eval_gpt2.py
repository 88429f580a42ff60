# Score the released GPT-2 small checkpoint on the validation split; nothing is trained.
# shape of the checkpoint: 12 layers, 12 heads, width 768 (about 124M weights)
init_from = 'gpt2'
eval_only = True
eval_iters = 400  # a long evaluation, so the loss estimate is steady
batch_size = 8
wandb_log = False
