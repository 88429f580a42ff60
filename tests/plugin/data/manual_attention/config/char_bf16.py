# a character-level run of the slow-attention model.py beside this folder
dataset = "shakespeare_char"
batch_size = 16
block_size = 256
n_layer = 4
n_head = 4
n_embd = 128
dropout = 0.0
dtype = "bfloat16"
compile = False
