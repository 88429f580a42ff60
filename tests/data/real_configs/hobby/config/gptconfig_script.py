from model import GPT, GPTConfig

config = GPTConfig(
    n_layer=6,
    n_head=6,
    n_embd=384,
    block_size=256,
    vocab_size=65,  # planted: GPT105
    dropout=0.2,
)
model = GPT(config)
