cfg = GPTConfig(
    n_layer=8,
    n_head=12,
    n_kv_head=5,  # planted: GPT104
    n_embd=1536,
    block_size=512,
)
preset = dict(n_layer=2, n_head=2, n_embd=1024)  # planted: GPT103
