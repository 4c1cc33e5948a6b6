#!/usr/bin/env bash
# Usage: [NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 PYTHON=python] \
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# GPUS is the number of processes on this node (see tools/dist_train.sh).
# (the torchrun call itself is tools/misc/torchrun_tool.sh, shared with dist_train.sh)
exec bash "$(dirname "$0")/misc/torchrun_tool.sh" tools/test.py "$3" "$1" "$2" \
    --launcher pytorch "${@:4}"
