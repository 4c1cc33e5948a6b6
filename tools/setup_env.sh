#!/usr/bin/env bash
# One-command environment for mmconvarch, from nothing or from a half-finished earlier run.
#
#   1 venv          a venv at $MMCONVARCH_VENV (default ./.venv; elsewhere ./.venv links to it)
#   2 torch         torch + torchvision, pinned (pip takes them from this machine's local files)
#   3 mmcv wheel    mmcv 2.1.0 with compiled ops, built once and cached under $MMCONVARCH_CACHE/wheels,
#                   keyed by mmcv, torch and Python versions and the build flags. The build runs with
#                   its own build-only tools (setuptools<70) on PYTHONPATH, so the venv keeps the
#                   setuptools torch asks for.
#   4 packages      the wheel + mmengine/mmdet/mmseg/mmpretrain + `pip install -e .[all,tests]`, one resolve
#   5 check         every package imports, mmcv ops run, `pip check` is clean
#
# Idempotent: every step checks what is already there. A failing step says which one and how to retry.
# Env: MMCONVARCH_VENV, MMCONVARCH_CACHE (default ~/.cache/mmconvarch), PYTHON (default python3), MAX_JOBS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE=${MMCONVARCH_CACHE:-$HOME/.cache/mmconvarch}
VENV=${MMCONVARCH_VENV:-$ROOT/.venv}
START=$(date +%s)
STEP=start
say() { echo "[setup_env +$(( $(date +%s) - START ))s] $*"; }
step() { STEP=$1; say "step $1: $2"; }
on_error() {
  echo "[setup_env] FAILED at step '$STEP' (see the error above)." >&2
  echo "[setup_env] Fix the cause and run 'bash tools/setup_env.sh' again: finished steps are skipped." >&2
  case $STEP in
    mmcv*) echo "[setup_env] A broken mmcv build leaves no wheel behind; the next run rebuilds it." >&2 ;;
    venv) echo "[setup_env] To start over: rm -rf '$VENV'" >&2 ;;
  esac
}
trap on_error ERR

step venv "virtual environment at $VENV"
if [ "$VENV" = "$ROOT/.venv" ] && [ -L "$VENV" ] && [ ! -e "$VENV" ]; then
  rm -f "$VENV"  # a dangling link left by an older layout
fi
if [ -x "$VENV/bin/python" ]; then
  say "reusing $VENV"
else
  "$PYTHON" -m venv "$VENV"
fi
if [ "$VENV" != "$ROOT/.venv" ]; then
  if [ -d "$ROOT/.venv" ] && [ ! -L "$ROOT/.venv" ]; then
    say "note: ./.venv is a venv of its own and stays; this one is $VENV"
  else
    ln -sfn "$VENV" "$ROOT/.venv"
    say "linked .venv -> $VENV"
  fi
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
PYTAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')

step torch "torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
have_torch=$("$PY" -c 'import torch, torchvision; print(torch.__version__.split("+")[0], torchvision.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have_torch" = "$TORCH_VERSION $TORCHVISION_VERSION" ]; then
  say "already installed"
else
  "${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# The wheel key names everything the binary depends on: a wheel built against another torch or
# with other flags would import and then fail inside the ops.
CXX_STD=c++17
if grep -q 'c++20' "$("$PY" -c 'import torch.utils.cpp_extension as m; print(m.__file__)')"; then
  CXX_STD=c++20  # recent torch's own headers need C++20; mmcv 2.1.0 hard-codes c++17
fi
DEVICE=$("$PY" -c 'import os, torch; print("cuda" if torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1" else "cpu")')
WHEEL_KEY=mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG-ops-$DEVICE-$CXX_STD
WHEEL_DIR=$CACHE/wheels/$WHEEL_KEY

step mmcv-wheel "mmcv $MMCV_VERSION wheel ($WHEEL_KEY)"
if ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
  say "using cached wheel in $WHEEL_DIR"
else
  say "no cached wheel: building mmcv from source (about 11 min on 2 cores)"
  mkdir -p "$CACHE/wheels"
  BUILD=$(mktemp -d "$CACHE/wheels/.build-XXXXXX")
  # Build-only tools, never installed into the venv: mmcv 2.1.0's setup.py imports pkg_resources
  # (gone from setuptools>=81) and needs setuptools<70. Both pip calls see them on PYTHONPATH.
  "${PIP[@]}" install -q --target "$BUILD/buildtools" "setuptools<70" wheel ninja
  OLD_PATH=$PATH
  export PYTHONPATH="$BUILD/buildtools" PATH="$BUILD/buildtools/bin:$PATH"
  "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" \
    -d "$BUILD"
  tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
  SRC=$BUILD/mmcv-$MMCV_VERSION
  if [ "$CXX_STD" = c++20 ]; then sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"; fi
  (cd "$SRC" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "${PIP[@]}" wheel --no-build-isolation --no-deps --no-cache-dir -w "$BUILD/dist" .)
  unset PYTHONPATH; PATH=$OLD_PATH
  mkdir -p "$WHEEL_DIR"
  mv "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR/"  # only a finished wheel ever lands in the cache
  rm -rf "$BUILD"
  say "built $(ls "$WHEEL_DIR")"
fi
WHEEL=$(ls "$WHEEL_DIR"/mmcv-*.whl | head -n1)

step packages "mmcv wheel, OpenMMLab packages and mmconvarch (editable, extras all+tests)"
have_mmcv=$("$PY" -c 'import mmcv, mmcv._ext; print(mmcv.__version__)' 2>/dev/null || true)
if [ "$have_mmcv" != "$MMCV_VERSION" ]; then
  "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEEL"
fi
"${PIP[@]}" install -q "$WHEEL" -e "$ROOT[all,tests]" -c "$ROOT/requirements/constraints.txt"

step check "imports, mmcv ops and pip check"
"$PY" - <<'PYEOF'
import torch, mmcv, mmcv._ext, mmengine, mmdet, mmseg, mmpretrain, mmconvarch
from mmcv.ops import RoIAlign, nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
assert nms(boxes, torch.tensor([0.9, 0.8]), 0.5)[1].tolist() == [0]
print('torch', torch.__version__, '| mmcv', mmcv.__version__, '(ops OK) | mmengine', mmengine.__version__,
      '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmpretrain', mmpretrain.__version__,
      '| mmconvarch', mmconvarch.__version__)
PYEOF
"${PIP[@]}" check
say "done in $(( $(date +%s) - START ))s: activate with 'source .venv/bin/activate'"
