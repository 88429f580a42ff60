"""Test data: a nanochat-like tok_train.py, its command line only."""

import argparse

parser = argparse.ArgumentParser(description="Train a BPE tokenizer")
parser.add_argument("--max-chars", type=int, default=2_000_000_000, help="characters to train on")
parser.add_argument("--vocab-size", type=int, default=2**15, help="vocabulary size")
args = parser.parse_args()
