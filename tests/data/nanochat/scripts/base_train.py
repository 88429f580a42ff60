"""Test data: a nanochat-like base_train.py, its command line only."""

import argparse

parser = argparse.ArgumentParser(description="Pretrain base model")
parser.add_argument("--run", type=str, default="dummy", help="wandb run name")
parser.add_argument("--device-type", type=str, default="", help="cuda|cpu|mps")
parser.add_argument("--fp8", action="store_true", help="enable FP8 training")
RECIPES = ["rowwise", "tensorwise"]
parser.add_argument("--fp8-recipe", type=str, default="tensorwise", choices=RECIPES)
parser.add_argument("--depth", type=int, default=20, help="depth of the Transformer model")
parser.add_argument("--aspect-ratio", type=int, default=64, help="model_dim = depth * aspect_ratio")
parser.add_argument("--head-dim", type=int, default=128, help="target head dimension")
parser.add_argument("--max-seq-len", type=int, default=2048, help="max context length")
parser.add_argument("--window-pattern", type=str, default="SSSL", help="L=full, S=short")
parser.add_argument("--target-param-data-ratio", type=float, default=12, help="data:param ratio")
parser.add_argument("--device-batch-size", type=int, default=32, help="per-device batch size")
parser.add_argument("--total-batch-size", type=int, default=-1, help="-1 = auto")
parser.add_argument("--eval-tokens", type=int, default=80 * 524288, help="val tokens")
parser.add_argument("--model-tag", type=str, default=None, help="checkpoint directory name")
args = parser.parse_args()
