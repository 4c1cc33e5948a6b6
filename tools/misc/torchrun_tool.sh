#!/usr/bin/env bash
# What tools/dist_train.sh and dist_test.sh share: run TOOL (tools/train.py or tools/test.py) under
# torchrun with GPUS processes on this node.
# Usage: tools/misc/torchrun_tool.sh TOOL GPUS [tool args, --launcher pytorch among them]
# Env: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
TOOL=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

# `python -m torch.distributed.run` is torchrun, run by the same interpreter
PYTHONPATH="$ROOT":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$ROOT/$TOOL" \
    "${@:3}"
