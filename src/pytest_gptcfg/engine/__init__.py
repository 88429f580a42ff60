"""The memory-check engine: every module of the plugin that imports torch lives here.

`check` holds the entry points (`check_memory`, `find_max_batch_size`); `cuda` measures on a GPU,
`simulate` runs the step on fake tensors (with `policy`, `kernels`, `tracker`, `allocator`),
`trainstep` is nanoGPT's training step both run, `nanogpt` the built-in model, `usermodel` a
project's own model.py, `snapshot` the memory_viz files.

This package's `__init__` imports nothing, so `pytest_gptcfg.engine.allocator` and
`pytest_gptcfg.engine.snapshot` (which need no torch) can be imported on their own. The pytest
glue (`plugin`, `options`, `items`, `report`) imports the engine only inside
`MemoryItem.runtest`: loading the plugin or collecting configs never imports torch.
"""
