MODEL_PRESETS = {
    'tiny': dict(n_layer=4, n_head=4, n_embd=256),
    'small': dict(n_layer=8, n_head=8, n_embd=512),
    'base': dict(n_layer=12, n_head=12, n_embd=768),
}
preset = 'small'
n_layer = MODEL_PRESETS[preset]['n_layer']
n_head = MODEL_PRESETS[preset]['n_head']
n_embd = MODEL_PRESETS[preset]['n_embd']
batch_size = 8
block_size = 512
max_iters = 5000
lr_decay_iters = 5000
eval_interval = 500
