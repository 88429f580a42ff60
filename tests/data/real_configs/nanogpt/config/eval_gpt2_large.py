# Validation loss of the pretrained gpt2-large weights, no optimizer steps.
# shape of the checkpoint: 36 layers, 20 heads, width 1280 (about 774M weights)
init_from = 'gpt2-large'
eval_only = True
eval_iters = 400  # a long evaluation, so the loss estimate is steady
batch_size = 8
wandb_log = False
