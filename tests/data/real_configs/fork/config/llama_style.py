# llama-style 16 layers with a 32k tokenizer
vocab_size = 32000
n_layer = 16
n_head = 16
n_kv_head = 4
n_embd = 1024
batch_size = 4
gradient_accumulation_steps = 32
optimizer = 'muon'
muon_lr = 0.02
max_iters = 30000
lr_decay_iters = 30000
