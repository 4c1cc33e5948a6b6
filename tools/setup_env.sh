#!/usr/bin/env bash
# One-command environment for mmconvarch: torch + torchvision, mmcv 2.1.0 built from source with
# ops (wheel cached per torch version), mmengine/mmdet/mmseg/mmpretrain, and `pip install -e .`.
# The venv lives under ~/.cache/mmconvarch so a fresh clone reuses it; ./.venv links to it.
# Env: MMCONVARCH_CACHE (default ~/.cache/mmconvarch), PYTHON (default python3), MAX_JOBS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.14.1}
TORCHVISION_VERSION=${TORCHVISION_VERSION:-0.29.1}
MMCV_VERSION=2.1.0
CACHE=${MMCONVARCH_CACHE:-$HOME/.cache/mmconvarch}
PYTAG=$($PYTHON -c 'import sys; print(f"py{sys.version_info.major}{sys.version_info.minor}")')
VENV=$CACHE/venv-$PYTAG-torch$TORCH_VERSION
START=$(date +%s)
say() { echo "[setup_env +$(( $(date +%s) - START ))s] $*"; }
mkdir -p "$CACHE"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV"
  $PYTHON -m venv "$VENV"
else
  say "reusing venv $VENV"
fi
ln -sfn "$VENV" "$ROOT/.venv"
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check"

have_torch=$($PY -c 'import torch, torchvision; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have_torch" = "$TORCH_VERSION" ]; then
  say "torch $have_torch already installed"
else
  say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  $PIP install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
$PIP install -q "setuptools<70" wheel ninja psutil

# mmcv 2.1.0 with compiled ops. pip's wheel cache may hold a wheel built against another torch,
# so we keep our own, keyed by the torch version.
if $PY -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  say "mmcv $MMCV_VERSION with ops already installed"
else
  WHEEL_DIR=$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    say "building mmcv $MMCV_VERSION from source (slow: ~20 min on 2 cores)"
    BUILD=$(mktemp -d)
    $PIP download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
    SRC=$BUILD/mmcv-$MMCV_VERSION
    # torch's own cpp_extension headers need C++20 on recent torch; mmcv 2.1.0 hard-codes c++17.
    if grep -q 'c++20' "$($PY -c 'import torch.utils.cpp_extension as m; print(m.__file__)')"; then
      sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
      say "patched mmcv setup.py to -std=c++20"
    fi
    mkdir -p "$WHEEL_DIR"
    (cd "$SRC" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      $PIP wheel --no-build-isolation --no-deps --no-cache-dir -w "$WHEEL_DIR" .)
    rm -rf "$BUILD"
  else
    say "using cached mmcv wheel from $WHEEL_DIR"
  fi
  $PIP install -q --force-reinstall --no-deps "$WHEEL_DIR"/mmcv-*.whl
  $PIP install -q addict packaging Pillow pyyaml yapf opencv-python
fi
$PY -c "import mmcv, mmcv._ext; from mmcv.ops import RoIAlign, nms; print('mmcv', mmcv.__version__, 'ops OK')"

say "installing OpenMMLab packages and mmconvarch (editable)"
$PIP install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
$PIP install -q --no-deps -e "$ROOT"
$PY - <<'PYEOF'
import torch, mmcv, mmengine, mmdet, mmseg, mmpretrain
print('torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__,
      '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmpretrain', mmpretrain.__version__)
PYEOF
say "done: activate with 'source .venv/bin/activate'"
