"""The nanoGPT front end: what a config file says, what train.py (nanoGPT's or a fork's) makes of
it, and the training run it derives. Takes plain arguments, never `Settings`. Imports `facts`,
`text` and `runmodel`."""
