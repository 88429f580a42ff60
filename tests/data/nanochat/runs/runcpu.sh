#!/bin/bash
# A runcpu-like run script (test data): one process, continuations.
export NANOCHAT_DTYPE=float32
DEPTH=6
python -m scripts.tok_train --max-chars=2000000000 --vocab-size 4096
python -m scripts.base_train \
    --depth=$DEPTH \
    --head-dim=64 \
    --window-pattern=L \
    --max-seq-len=512 \
    --device-batch-size=32 \
    --total-batch-size=16384
python -m scripts.base_eval --device-batch-size=1 --split-tokens=16384
python -m scripts.chat_sft \
    --eval-tokens=524288 # the rest inherited
