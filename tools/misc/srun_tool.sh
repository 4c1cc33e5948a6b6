#!/usr/bin/env bash
# What tools/slurm_train.sh and slurm_test.sh share: run TOOL (tools/train.py or tools/test.py) as
# GPUS Slurm tasks.
# Usage: tools/misc/srun_tool.sh PARTITION JOB_NAME TOOL [tool args, --launcher=slurm among them]
# Env: GPUS (8), GPUS_PER_NODE (8; 0: CPU tasks, TASKS_PER_NODE then sets tasks per node, default
# GPUS), CPUS_PER_TASK (5), SRUN_ARGS, PYTHON (python). See tools/slurm_train.sh.
set -x

PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

if [ "$GPUS_PER_NODE" -gt 0 ]; then
    GRES="--gres=gpu:${GPUS_PER_NODE}"
    TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS_PER_NODE}
else
    GRES=""
    TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS}
fi

PYTHONPATH="$ROOT":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    ${GRES} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${TASKS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$ROOT/$TOOL" "${@:4}"
