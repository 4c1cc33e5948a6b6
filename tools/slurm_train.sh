#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# GPUS: number of tasks (processes) in all; GPUS_PER_NODE: GPUs and tasks per node.
# GPUS_PER_NODE=0 runs CPU tasks (no --gres; without a GPU the tools switch nccl to gloo):
# TASKS_PER_NODE then sets tasks per node (default: GPUS, i.e. one node). MASTER_ADDR is the job's
# first node (mmengine, from SLURM_NODELIST); set MASTER_PORT (default 29500) when jobs share a
# node. PYTHON picks the interpreter (default: python on PATH). See docs/multinode.md.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
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
    "${PYTHON:-python}" -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "${@:5}"
