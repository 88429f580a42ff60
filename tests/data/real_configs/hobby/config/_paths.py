import os

DATA_ROOT = os.path.expanduser('~/datasets')
CKPT_ROOT = os.path.join(DATA_ROOT, 'ckpt')
