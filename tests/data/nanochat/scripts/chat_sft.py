"""Test data: a nanochat-like chat_sft.py, its command line and what it inherits."""

import argparse

parser = argparse.ArgumentParser(description="Supervised fine-tuning")
parser.add_argument("--run", type=str, default="dummy", help="wandb run name")
parser.add_argument("--max-seq-len", type=int, default=None, help="default: inherit")
parser.add_argument("--device-batch-size", type=int, default=None, help="default: inherit")
parser.add_argument("--total-batch-size", type=int, default=None, help="default: inherit")
parser.add_argument("--eval-tokens", type=int, default=40 * 524288, help="val tokens")
args = parser.parse_args()

meta: dict[str, int] = {}
for name, fallback, source in [
    ("max_seq_len", 2048, meta),
    ("device_batch_size", 32, meta),
    ("total_batch_size", 524288, meta),
]:
    if getattr(args, name) is None:
        setattr(args, name, source.get(name, fallback))
