"""Facts and types every layer shares: units, states as types, exit codes, GPU profiles, the
CUDA caching allocator's block sizes, the unknown-value marker. Imports nothing of gptlint."""
