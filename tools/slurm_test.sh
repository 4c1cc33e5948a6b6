#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# GPUS: number of tasks (processes) in all; GPUS_PER_NODE: GPUs and tasks
# per node. GPUS_PER_NODE=0 runs CPU tasks (no --gres; without a GPU the
# tools switch nccl to gloo): TASKS_PER_NODE then sets tasks per node
# (default: GPUS, i.e. one node). MASTER_ADDR is the job's first node
# (mmengine, from SLURM_NODELIST); set MASTER_PORT (default 29500) when jobs
# share a node.
# PYTHON picks the interpreter (default: python on PATH). See README.
# (mmdet's interface; the srun call itself is tools/misc/srun_tool.sh, shared with slurm_train.sh)
exec bash "$(dirname "$0")/misc/srun_tool.sh" "$1" "$2" tools/test.py "$3" "$4" \
    --launcher=slurm "${@:5}"
