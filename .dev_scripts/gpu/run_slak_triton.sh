#!/usr/bin/env bash
# Issue 22: the first GPU run of SLaK's Triton depthwise kernels, ~6 minutes.
#   1. pytest -m cuda tests/test_dwconv_triton.py   (compiled kernels vs F.conv2d,
#      SLaK-T's real layer shapes, a whole narrow SLaK forced onto Triton vs cuDNN)
#   2. tools/analysis/benchmark_slak.py --triton-only  (per-layer and whole-model
#      cuDNN vs Triton, fp32/fp16/bf16, then the block-size sweep)
# Output: $OUT/slak_triton/{pytest.log,benchmark.log} when $OUT is set, else
# ./work_dirs/slak_triton/. Run from anywhere: bash .dev_scripts/gpu/run_slak_triton.sh
# Env: PYTHON (default: .venv/bin/python if present, else python), BATCH (64).
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
DEST=${OUT:-work_dirs}/slak_triton
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1
start=$(date +%s)
{
  echo "# $(date -u) $(hostname)"
  "$PY" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__,
           'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA')"
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv 2>/dev/null
} | tee "$DEST/env.txt"

# correctness first: the speed numbers mean nothing if these fail
timeout 200 "$PY" -m pytest -m cuda tests/test_dwconv_triton.py -q -rs -p no:cacheprovider --durations=15 \
  2>&1 | tee "$DEST/pytest.log"
rc_test=${PIPESTATUS[0]}
echo "pytest rc=$rc_test ($(( $(date +%s) - start )) s)" | tee -a "$DEST/pytest.log"

# what is left of ~6 minutes goes to the benchmark (sections print as they finish)
left=$(( 350 - ($(date +%s) - start) ))
[ "$left" -lt 60 ] && left=60
timeout "$left" "$PY" tools/analysis/benchmark_slak.py --triton-only \
  --triton-batch "${BATCH:-64}" --triton-repeat 7 --model-repeat 5 \
  2>&1 | tee "$DEST/benchmark.log"
rc_bench=${PIPESTATUS[0]}
echo "benchmark rc=$rc_bench (124 = hit its ${left}s limit; $(( $(date +%s) - start )) s total)" \
  | tee -a "$DEST/benchmark.log"
exit $(( rc_test != 0 ? rc_test : rc_bench ))
