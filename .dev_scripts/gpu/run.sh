#!/usr/bin/env bash
# On a GPU machine with torch but no OpenMMLab package and no network: install the wheelhouse
# (make_wheelhouse.sh, built elsewhere), then run the cuda tests and the GPU benchmarks.
#
#   bash .dev_scripts/gpu/run.sh --wheelhouse DIR [--timeout S] [--only tests|benchmarks|side-by-side]
#                                [-- EXTRA PYTEST ARGS]
#
# 1. `pip install --no-index --no-deps --target $GPU_SITE DIR/*.whl` (default
#    /tmp/mmconvarch-gpu-site; skipped when the same wheels are already there), plus DIR/optional's
#    setuptools<81 / pytest only where the image lacks them; PYTHONPATH = that folder and the
#    repository, so the machine's own torch is used (its python3 is itself a venv: a nested
#    --system-site-packages venv would not see its torch). Without --wheelhouse the interpreter
#    must already import mmengine, mmcv and mmpretrain.
# 2. `python -m pytest -m cuda tests/`: every test module must import without mmdet, mmseg and
#    mmcv.ops (pytest.importorskip them), which the wheelhouse does not have.
# 3. The GPU benchmarks with --device cuda: tools/analysis/benchmark_vanillanet.py, benchmark.py
#    --latency (VanillaNet-5 deploy, batch 1, fp16/fp32), benchmark_revcol_memory.py, benchmark_slak.py.
# --only side-by-side instead runs .dev_scripts/gpu/side_by_side.py (ours beside the official code;
#    needs the official model files: $OFFICIAL, default the git-ignored .official/, carried).
# Each step runs under `timeout`, all of them within --timeout S seconds (default 540); a step
# that would start with under 20 s left is skipped and counts as failed. Logs go to $OUT (the
# device tool's folder) when set, else work_dirs/gpu_run: pytest.log, pytest.xml (JUnit),
# bench_*.log, summary.txt. Exit status 0 when every step passed. Env: PYTHON (default python3),
# GPU_SITE.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
START=$(date +%s)
WHEELHOUSE=''
BUDGET=540
ONLY=''
PYTEST_EXTRA=()
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a folder}; shift 2 ;;
    --timeout) BUDGET=${2:?--timeout needs seconds}; shift 2 ;;
    --only) ONLY=${2:?--only needs tests, benchmarks or side-by-side}; shift 2 ;;
    --) shift; PYTEST_EXTRA=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $BUDGET in ''|*[!0-9]*) echo "run.sh: --timeout must be whole seconds, got $BUDGET" >&2; exit 2 ;; esac
case $ONLY in ''|tests|benchmarks|side-by-side) ;;
  *) echo "run.sh: --only must be tests, benchmarks or side-by-side, got $ONLY" >&2; exit 2 ;; esac
OFFICIAL=${OFFICIAL:-$ROOT/.official}
if [ "$ONLY" = side-by-side ] && [ ! -d "$OFFICIAL" ]; then
  echo "run.sh: --only side-by-side needs the official model files in $OFFICIAL (see" \
       ".dev_scripts/gpu/side_by_side.py; carry the folder)" >&2; exit 2
fi
PY=${PYTHON:-python3}
LOGS=${OUT:-$ROOT/work_dirs/gpu_run}
mkdir -p "$LOGS"
SUMMARY=$LOGS/summary.txt
: > "$SUMMARY"
say() { echo "[gpu/run +$(( $(date +%s) - START ))s] $*" | tee -a "$SUMMARY"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

if [ -n "$WHEELHOUSE" ]; then
  [ -d "$WHEELHOUSE" ] || { echo "run.sh: --wheelhouse $WHEELHOUSE is not a folder" >&2; exit 2; }
  DIR=$(cd "$WHEELHOUSE" && pwd)
  SITE=${GPU_SITE:-/tmp/mmconvarch-gpu-site}
  STAMP=$(cd "$DIR" && ls ./*.whl | sort | tr '\n' ' ')
  if [ -f "$SITE/.wheelhouse" ] && [ "$(cat "$SITE/.wheelhouse")" = "$STAMP" ]; then
    say "wheels already installed in $SITE"
  else
    say "installing $(ls "$DIR"/*.whl | wc -l) wheels from $DIR into $SITE (no index, no deps)"
    rm -rf "$SITE"
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
      --no-cache-dir --target "$SITE" "$DIR"/*.whl || exit 1
    echo "$STAMP" > "$SITE/.wheelhouse"
  fi
  export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  # mmengine imports pkg_resources (gone from setuptools>=81) and, on Python>=3.12, distutils
  # (which setuptools provides once imported); the tests need pytest
  for probe in "setuptools:import setuptools, pkg_resources" "pytest:import pytest"; do
    if ! "$PY" -c "${probe#*:}" 2>/dev/null; then
      wheel=$(ls "$DIR"/optional/"${probe%%:*}"-*.whl)
      [ "${probe%%:*}" = pytest ] && wheel="$wheel $(ls "$DIR"/optional/{pluggy,iniconfig}-*.whl)"
      say "the image lacks ${probe%%:*} (${probe#*:}): adding $(basename -a $wheel | tr '\n' ' ')"
      # shellcheck disable=SC2086
      "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
        --no-cache-dir --target "$SITE" $wheel || exit 1
    fi
  done
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c 'import torch, mmengine, mmcv, mmpretrain, mmconvarch, pytest
print("torch", torch.__version__, "cuda", torch.version.cuda, "| GPU:",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
      "| mmengine", mmengine.__version__, "| mmcv", mmcv.__version__,
      "| mmpretrain", mmpretrain.__version__, "| pytest", pytest.__version__)' 2>&1 \
  | tee -a "$SUMMARY"
[ "${PIPESTATUS[0]}" = 0 ] || {
  echo "run.sh: the packages do not import (above); rebuild the wheelhouse with" \
       ".dev_scripts/gpu/make_wheelhouse.sh DIR, or add what is missing" >&2; exit 1; }
"$PY" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null ||
  say "WARNING: torch sees no CUDA device: the cuda tests will be skipped, the benchmarks fail"

export PYTHONUNBUFFERED=1
FAILED=()
step() {  # step NAME LOG LIMIT CMD...: run CMD under timeout, logged, within the budget
  local name=$1 log=$2 limit=$3 rc
  shift 3
  if [ "$(left)" -lt 20 ]; then
    say "$name: SKIPPED (the --timeout budget is spent)"; FAILED+=("$name"); return
  fi
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  say "$name (limit ${limit}s): $*"
  (cd "$ROOT" && timeout -k 10 "$limit" "$@") > "$log" 2>&1
  rc=$?
  tail -n 25 "$log"
  if [ "$rc" = 0 ]; then say "$name: passed"
  else
    [ "$rc" = 124 ] && say "$name: killed after ${limit}s" || say "$name: FAILED (exit $rc)"
    FAILED+=("$name")
  fi
}

if [ -z "$ONLY" ] || [ "$ONLY" = tests ]; then
  step "cuda tests" "$LOGS/pytest.log" 360 \
    "$PY" -m pytest -m cuda tests/ -q -rfEs -p no:cacheprovider --junitxml="$LOGS/pytest.xml" \
    ${PYTEST_EXTRA[@]+"${PYTEST_EXTRA[@]}"}
fi
if [ -z "$ONLY" ] || [ "$ONLY" = benchmarks ]; then
  A=tools/analysis
  step "benchmark_vanillanet" "$LOGS/bench_vanillanet.log" 90 \
    "$PY" $A/benchmark_vanillanet.py --device cuda --batch-sizes 1 64
  # VanillaNet-5 deploy form at batch 1: eager vs the latency path (CUDA graph), fp16 and fp32
  step "benchmark --latency (VanillaNet-5 deploy, batch 1)" "$LOGS/bench_latency.log" 90 \
    bash -c 'for dtype in float16 float32; do "$0" tools/analysis/benchmark.py \
      configs/vanillanet/vanillanet_5_in1k.py --deploy --latency --dtype $dtype \
      --shape 224 224 --batch-size 1 --device cuda || exit; done' "$PY"
  step "benchmark_revcol_memory" "$LOGS/bench_revcol_memory.log" 150 \
    "$PY" $A/benchmark_revcol_memory.py --device cuda --amp --batch 64 --columns 4 8 16
  step "benchmark_slak" "$LOGS/bench_slak.log" 180 \
    "$PY" $A/benchmark_slak.py --device cuda --batch 64
fi
if [ "$ONLY" = side-by-side ]; then
  step "side_by_side" "$LOGS/side_by_side.log" "$BUDGET" \
    "$PY" .dev_scripts/gpu/side_by_side.py --official "$OFFICIAL" --profile-revcol 8
fi
if [ ${#FAILED[@]} = 0 ]; then say "all steps passed in $(( $(date +%s) - START ))s"; exit 0; fi
say "FAILED: ${FAILED[*]} ($(( $(date +%s) - START ))s)"
exit 1
