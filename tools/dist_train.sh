#!/usr/bin/env bash
# Usage: [NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 PYTHON=python] \
#   tools/dist_train.sh CONFIG GPUS [train.py args]
# GPUS is the number of processes on this node (one per GPU; without a GPU,
# CPU processes with the gloo backend). Multi-node: run the same command on
# every node with the same NNODES, MASTER_ADDR (node 0's address) and PORT,
# and NODE_RANK=0..NNODES-1. See README "Multi-node".
# (the torchrun call itself is tools/misc/torchrun_tool.sh, shared with dist_test.sh)
exec bash "$(dirname "$0")/misc/torchrun_tool.sh" tools/train.py "$2" "$1" \
    --launcher pytorch "${@:3}"
