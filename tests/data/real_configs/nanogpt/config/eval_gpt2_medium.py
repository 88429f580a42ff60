# Validation loss of the pretrained gpt2-medium weights, no optimizer steps.
# shape of the checkpoint: 24 layers, 16 heads, width 1024 (about 350M weights)
init_from = 'gpt2-medium'
eval_only = True
eval_iters = 400  # a long evaluation, so the loss estimate is steady
batch_size = 8
wandb_log = False
