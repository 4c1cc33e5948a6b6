#!/usr/bin/env bash
# Usage: [NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 PYTHON=python] \
#   tools/dist_train.sh CONFIG GPUS [train.py args]
# GPUS is the number of processes on this node (one per GPU; without a GPU, CPU processes with the
# gloo backend). Multi-node: run the same command on every node with the same NNODES, MASTER_ADDR
# (node 0's address) and PORT, and NODE_RANK=0..NNODES-1. See docs/multinode.md.
CONFIG=$1
GPUS=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# `python -m torch.distributed.run` is torchrun, run by the same interpreter
PYTHONPATH="$ROOT":$PYTHONPATH \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$GPUS" \
    --master_port="${PORT:-29500}" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
