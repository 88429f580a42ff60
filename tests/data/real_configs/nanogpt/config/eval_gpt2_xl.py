# Validation loss of the largest pretrained GPT-2 (gpt2-xl), no optimizer steps.
# shape of the checkpoint: 48 layers, 25 heads, width 1600 (about 1.56B weights)
init_from = 'gpt2-xl'
eval_only = True
eval_iters = 400  # a long evaluation, so the loss estimate is steady
batch_size = 8
wandb_log = False
