# GPT-2's padded vocabulary (no meta.pkl for this dataset): logits beside the scores
dataset = "openwebtext"
batch_size = 4
block_size = 512
n_layer = 2
n_head = 4
n_embd = 128
dropout = 0.0
dtype = "bfloat16"
compile = False
