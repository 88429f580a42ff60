#!/bin/bash
# A miniseries-like run script (test data): a loop, defaults only running gives.
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
for d in 12 16 20; do
    if [ $d -ge 20 ]; then
        DEVICE_BATCH_SIZE_ARG="--device-batch-size=16"
    else
        DEVICE_BATCH_SIZE_ARG="--device-batch-size=32"
    fi
    torchrun --standalone --nproc_per_node=$NPROC_PER_NODE -m scripts.base_train -- \
        --depth=$d \
        $DEVICE_BATCH_SIZE_ARG \
        2>&1 | tee "train_d${d}.log"
done
