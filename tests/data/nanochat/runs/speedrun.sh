#!/bin/bash
# A speedrun-like run script (test data).
export OMP_NUM_THREADS=1
if [ -z "$WANDB_RUN" ]; then
    WANDB_RUN=dummy
fi
python -m scripts.tok_train
torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=24 --target-param-data-ratio=8 --device-batch-size=16 --fp8 --run=$WANDB_RUN
torchrun --standalone --nproc_per_node=8 -m scripts.base_eval -- --device-batch-size=16
torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --run=$WANDB_RUN
