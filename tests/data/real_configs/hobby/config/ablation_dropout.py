from base import *

dropout = 0.1
out_dir = f'out-drop{dropout}'
