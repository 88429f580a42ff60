exec(open('config/base.py').read())
batch_size = 4
gradient_accumulation_steps = 32
