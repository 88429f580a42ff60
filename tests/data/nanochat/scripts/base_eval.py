"""Test data: a nanochat-like base_eval.py, its command line inside main()."""

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description="Evaluate a base model")
    parser.add_argument("--device-batch-size", type=int, default=32, help="BPB batch size")
    parser.add_argument("--split-tokens", type=int, default=40 * 524288, help="tokens per split")
    parser.add_argument("--max-per-task", type=int, default=-1, help="examples per task")
    parser.parse_args()


if __name__ == "__main__":
    main()
