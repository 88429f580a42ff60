"""pytest-gptcfg: check nanoGPT configs in pytest, memory included. Imports no torch."""
