# fp16 (the half-to-float softmax) with attention dropout
dataset = "shakespeare_char"
batch_size = 16
block_size = 256
n_layer = 4
n_head = 4
n_embd = 128
dropout = 0.1
dtype = "float16"
compile = False
