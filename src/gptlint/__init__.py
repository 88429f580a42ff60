"""gptlint: a static linter for nanoGPT-style training configs."""

__version__ = "0.1.0"
