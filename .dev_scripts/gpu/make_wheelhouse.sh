#!/usr/bin/env bash
# Build, here (with a package index), the wheels that a GPU machine with torch but no OpenMMLab
# package and no network needs to run the cuda tests and the GPU benchmarks (run.sh installs them).
#
#   bash .dev_scripts/gpu/make_wheelhouse.sh DIR
#
# DIR gets pure-Python wheels for Python 3.12 of mmengine, mmpretrain and their requirements that
# the GPU image lacks, plus mmcv 2.1.0 built WITHOUT compiled ops (MMCV_WITH_OPS=0: the
# distribution mmcv-lite; `import mmcv` is the same, mmcv.ops is absent). mmcv's build gets
# setuptools<70 (its setup.py imports pkg_resources) as a build-only tool on PYTHONPATH, as
# tools/setup_env.sh does; the wheel is cached under $MMCONVARCH_CACHE/wheels (default
# ~/.cache/mmconvarch). DIR/optional holds what run.sh installs only where the image lacks it:
# setuptools<81 (pkg_resources, for mmengine's `mmpretrain::` configs) and pytest. The script
# checks that every requirement is in DIR or on the GPU image and prints the size.
# Env: PYTHON (default ./.venv/bin/python, else python3), MMCONVARCH_CACHE.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
START=$(date +%s)
DIR=${1:?usage: bash .dev_scripts/gpu/make_wheelhouse.sh DIR}
MMCV_VERSION=2.1.0
TOP_WHEELS=(mmengine==0.10.7 mmpretrain==1.2.0)
# requirements of mmengine / mmpretrain / mmcv that the GPU image lacks (its package list: the
# device notes' KINDS.md)
EXTRA_WHEELS=(addict==2.4.0 termcolor==3.3.0 yapf==0.43.0 platformdirs==4.14.9 mat4py==0.6.0
              modelindex==0.0.2 model-index==0.1.11 ordered-set==4.1.0 importlib-metadata==10.2.0
              lazy-importer==0.1.0)
OPTIONAL_WHEELS=(setuptools==80.10.2 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1)
# what the GPU image has that these wheels need (the rest of its list is irrelevant here)
GPU_HAS="numpy torch torchvision matplotlib opencv-python-headless pillow pyyaml rich einops
packaging click markdown zipp regex setuptools six python-dateutil pyparsing cycler fonttools
kiwisolver contourpy pygments markdown-it-py mdurl typing-extensions filelock jinja2 tomli
pytest pluggy iniconfig"

say() { echo "[make_wheelhouse +$(( $(date +%s) - START ))s] $*"; }
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python
else PY=python3; fi
PIP=("$PY" -m pip --disable-pip-version-check)

mkdir -p "$DIR/optional"
DIR=$(cd "$DIR" && pwd)
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux_2_28_x86_64)
say "downloading ${TOP_WHEELS[*]} ${EXTRA_WHEELS[*]} (Python 3.12 wheels, no deps)"
"${PIP[@]}" download -q --no-deps "${TARGET[@]}" -d "$DIR" "${TOP_WHEELS[@]}" "${EXTRA_WHEELS[@]}"
"${PIP[@]}" download -q --no-deps "${TARGET[@]}" -d "$DIR/optional" "${OPTIONAL_WHEELS[@]}"

CACHE=${MMCONVARCH_CACHE:-$HOME/.cache/mmconvarch}/wheels/mmcv-lite-$MMCV_VERSION-noops-py3
if ls "$CACHE"/mmcv_lite-*.whl >/dev/null 2>&1; then
  say "using the cached mmcv $MMCV_VERSION (no ops) wheel in $CACHE"
else
  say "building mmcv $MMCV_VERSION without compiled ops (MMCV_WITH_OPS=0)"
  mkdir -p "$(dirname "$CACHE")"
  BUILD=$(mktemp -d "$(dirname "$CACHE")/.build-lite-XXXXXX")
  trap 'rm -rf "$BUILD"' EXIT
  # build-only tools, never installed anywhere: mmcv's setup.py imports pkg_resources
  "${PIP[@]}" install -q --no-warn-conflicts --target "$BUILD/buildtools" "setuptools<70" wheel
  (
    export PYTHONPATH="$BUILD/buildtools" PATH="$BUILD/buildtools/bin:$PATH"
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: \
      "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    cd "$BUILD/mmcv-$MMCV_VERSION"
    MMCV_WITH_OPS=0 "${PIP[@]}" wheel -q --no-build-isolation --no-deps --no-cache-dir \
      -w "$BUILD/dist" .
  )
  BUILT=$(ls "$BUILD"/dist/*.whl)
  case $(basename "$BUILT") in
    *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
    *) echo "[make_wheelhouse] $(basename "$BUILT") is not a pure-Python wheel" \
            "(py3-none-any): it would not install on cp312" >&2; exit 1 ;;
  esac
  if ! "$PY" -c 'import sys, zipfile; sys.exit(any(n.endswith((".so", ".pyd")) for n in
zipfile.ZipFile(sys.argv[1]).namelist()))' "$BUILT"; then
    echo "[make_wheelhouse] $(basename "$BUILT") holds compiled ops; expected none" >&2; exit 1
  fi
  mkdir -p "$CACHE"
  mv "$BUILT" "$CACHE/"
fi
cp "$CACHE"/mmcv_lite-*.whl "$DIR/"

say "checking that every requirement is in $DIR or on the GPU image"
GPU_HAS="$GPU_HAS" "$PY" - "$DIR" <<'PYEOF'
import glob, os, sys, zipfile
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
env = dict(python_version='3.12', python_full_version='3.12.3', sys_platform='linux',
           platform_system='Linux', os_name='posix', implementation_name='cpython',
           platform_python_implementation='CPython', platform_machine='x86_64', extra='')
wheels = sorted(glob.glob(os.path.join(sys.argv[1], '*.whl')))
have = {canonicalize_name(parse_wheel_filename(os.path.basename(w))[0]) for w in wheels}
gpu = {canonicalize_name(n) for n in os.environ['GPU_HAS'].split()}
alias = {'opencv-python': 'opencv-python-headless', 'mmcv': 'mmcv-lite'}
missing, seen = [], set()
for wheel in wheels:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        lines = z.read(meta).decode().splitlines()
    for line in lines:
        if not line.startswith('Requires-Dist:'):
            continue
        req = Requirement(line.split(':', 1)[1].strip())
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = alias.get(canonicalize_name(req.name), canonicalize_name(req.name))
        if name not in have and name not in gpu and name not in seen:
            seen.add(name)
            missing.append(f'{name} (needed by {os.path.basename(wheel)})')
print('  wheels:', ', '.join(os.path.basename(w) for w in wheels))
if missing:
    sys.exit('  not in the wheelhouse and not known on the GPU image: ' + '; '.join(missing))
print('  every requirement is in the wheelhouse or on the GPU image')
PYEOF
(cd "$DIR" && sha256sum ./*.whl optional/*.whl > MANIFEST.sha256)
say "wheelhouse $DIR: $(du -sh "$DIR" | cut -f1), $(ls "$DIR"/*.whl "$DIR"/optional/*.whl | wc -l) wheels"
