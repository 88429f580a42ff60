"""The nanochat front end: a run script's invocations of nanochat's entry points, the
checkout's argparse flags and defaults, and the run each invocation starts (issue 22)."""
