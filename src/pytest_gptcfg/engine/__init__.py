"""The memory-check engine: every module of the plugin that imports torch lives here.

`check` holds the entry points (`check_memory`, `find_max_batch_size`); `cuda` measures on a GPU,
`simulate` runs the eager step on fake tensors (with `policy`, `kernels`, `tracker`,
`allocator`), `compiledstep` the compiled one from Inductor's plans (`compiled`, `wrappercall`),
`evalstep` the evaluation an `eval_only` config runs, `trainstep` is nanoGPT's training step they
all run, `nanogpt` the built-in model, `usermodel` a project's own model.py, `snapshot` the
memory_viz files. `torchapi` is the one module that names PyTorch's private APIs.

This package's `__init__` imports nothing, so `pytest_gptcfg.engine.allocator` and
`pytest_gptcfg.engine.snapshot` (which need no torch) can be imported on their own. The pytest
glue (`plugin`, `options`, `items`, `report`) imports the engine only inside
`MemoryItem.runtest`: loading the plugin or collecting configs never imports torch.
"""
