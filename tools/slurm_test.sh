#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# The variables as in tools/slurm_train.sh. See docs/multinode.md.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
if [ "$GPUS_PER_NODE" -gt 0 ]; then
    GRES="--gres=gpu:${GPUS_PER_NODE}"
    TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS_PER_NODE}
else
    GRES=""
    TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS}
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck disable=SC2086  # GRES and SRUN_ARGS: word lists
PYTHONPATH="$ROOT":$PYTHONPATH \
srun -p "${PARTITION}" --job-name="${JOB_NAME}" ${GRES} --ntasks="${GPUS}" \
    --ntasks-per-node="${TASKS_PER_NODE}" --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher=slurm "${@:5}"
