#!/usr/bin/env bash
# One prepared GPU check (issue #16): amp, revcol, slak, vanillanet and ddp sections, one report.
#
#   bash tools/analysis/gpu_check.sh --dry-run [--out REPORT.json]   # CPU, tiny shapes (~20-40 s)
#   bash tools/analysis/gpu_check.sh --make-wheelhouse DIR           # here, with an index: the wheels
#   bash tools/analysis/gpu_check.sh --wheelhouse DIR [--out REPORT.json]   # on the GPU machine
#
# --make-wheelhouse DIR  pure-Python wheels, for Python 3.12, of mmengine, mmpretrain and their
#     requirements that the GPU image (Python 3.12, torch + CUDA, no OpenMMLab package, no
#     network) lacks, plus mmcv 2.1.0 built WITHOUT compiled ops (MMCV_WITH_OPS=0: the
#     distribution is called mmcv-lite; `import mmcv` is the same, mmcv.ops is absent). The
#     build gets setuptools<70 (mmcv's setup.py imports pkg_resources) as a build-only tool
#     on PYTHONPATH, as tools/setup_env.sh does; the wheel is cached under
#     $MMCONVARCH_CACHE/wheels. setuptools<81 goes to DIR/optional (installed only where
#     pkg_resources is missing). Checks every requirement is in DIR or on the GPU image,
#     prints the size. torch, torchvision, numpy, opencv, matplotlib... are not included.
# --wheelhouse DIR  install DIR's wheels with `pip install --no-index --no-deps --target
#     $GPU_CHECK_SITE` (default /tmp/mmconvarch-gpu-site) and put that and the repository on
#     PYTHONPATH, so the machine's own torch is used (its python3 is itself a venv: a nested
#     --system-site-packages venv would not see its torch). Then runs the check.
# Anything else is passed to tools/analysis/gpu_check.py (--out, --sections, --budget,
# --isolate/--no-isolate, --threads, --fp32-peak-tflops). Env: PYTHON (the interpreter; default
# ./.venv/bin/python, or python3 with --wheelhouse), GPU_CHECK_SITE, MMCONVARCH_CACHE.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
START=$(date +%s)
MMCV_VERSION=2.1.0
TOP_WHEELS=(mmengine==0.10.7 mmpretrain==1.2.0)
# requirements of mmengine / mmpretrain / mmcv that the GPU image lacks (its package list:
# the device notes' KINDS.md); the versions of this repository's environment
EXTRA_WHEELS=(addict==2.4.0 termcolor==3.3.0 yapf==0.43.0 platformdirs==4.14.9 mat4py==0.6.0
              modelindex==0.0.2 model-index==0.1.11 ordered-set==4.1.0 importlib-metadata==10.2.0
              lazy-importer==0.1.0)
OPTIONAL_WHEELS=(setuptools==80.10.2)  # pkg_resources, for mmengine's `mmpretrain::` configs
# what the GPU image has that these wheels need (the rest of its list is irrelevant here)
GPU_HAS="numpy torch torchvision matplotlib opencv-python-headless pillow pyyaml rich einops
packaging click markdown zipp regex setuptools six python-dateutil pyparsing cycler fonttools
kiwisolver contourpy pygments markdown-it-py mdurl typing-extensions filelock jinja2 tomli"

say() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*"; }
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

MAKE_DIR=''
WHEELHOUSE=''
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --make-wheelhouse) MAKE_DIR=${2:?--make-wheelhouse needs a folder}; shift 2 ;;
    --make-wheelhouse=*) MAKE_DIR=${1#*=}; shift ;;
    --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a folder}; shift 2 ;;
    --wheelhouse=*) WHEELHOUSE=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -z "$WHEELHOUSE" ] && [ -x "$ROOT/.venv/bin/python" ]; then
  PY=$ROOT/.venv/bin/python
else
  PY=python3
fi
PIP=("$PY" -m pip --disable-pip-version-check)

make_wheelhouse() {
  local dir=$1
  mkdir -p "$dir/optional"
  dir=$(cd "$dir" && pwd)
  local target=(--only-binary=:all: --python-version 3.12 --implementation cp
                --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
                --platform manylinux_2_28_x86_64)
  say "downloading ${TOP_WHEELS[*]} ${EXTRA_WHEELS[*]} (Python 3.12 wheels, no deps)"
  "${PIP[@]}" download -q --no-deps "${target[@]}" -d "$dir" "${TOP_WHEELS[@]}" "${EXTRA_WHEELS[@]}"
  "${PIP[@]}" download -q --no-deps "${target[@]}" -d "$dir/optional" "${OPTIONAL_WHEELS[@]}"

  local cache=${MMCONVARCH_CACHE:-$HOME/.cache/mmconvarch}/wheels/mmcv-lite-$MMCV_VERSION-noops-py3
  if ls "$cache"/mmcv_lite-*.whl >/dev/null 2>&1; then
    say "using the cached mmcv $MMCV_VERSION (no ops) wheel in $cache"
  else
    say "building mmcv $MMCV_VERSION without compiled ops (MMCV_WITH_OPS=0)"
    mkdir -p "$(dirname "$cache")"
    local build
    build=$(mktemp -d "$(dirname "$cache")/.build-lite-XXXXXX")
    # build-only tools, never installed anywhere: mmcv's setup.py imports pkg_resources
    "${PIP[@]}" install -q --no-warn-conflicts --target "$build/buildtools" "setuptools<70" wheel
    (
      export PYTHONPATH="$build/buildtools" PATH="$build/buildtools/bin:$PATH"
      "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: \
        "mmcv==$MMCV_VERSION" -d "$build"
      tar -xzf "$build/mmcv-$MMCV_VERSION.tar.gz" -C "$build"
      cd "$build/mmcv-$MMCV_VERSION"
      MMCV_WITH_OPS=0 "${PIP[@]}" wheel -q --no-build-isolation --no-deps --no-cache-dir \
        -w "$build/dist" .
    )
    local built
    built=$(ls "$build"/dist/*.whl)
    case $(basename "$built") in
      *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
      *) echo "[gpu_check] $(basename "$built") is not a pure-Python wheel (py3-none-any):" \
              "it would not install on cp312" >&2; exit 1 ;;
    esac
    if "$PY" -c 'import sys, zipfile; sys.exit(any(n.endswith((".so", ".pyd")) for n in
zipfile.ZipFile(sys.argv[1]).namelist()))' "$built"; then :; else
      echo "[gpu_check] $(basename "$built") holds compiled ops; expected none" >&2; exit 1
    fi
    mkdir -p "$cache"
    mv "$built" "$cache/"
    rm -rf "$build"
  fi
  cp "$cache"/mmcv_lite-*.whl "$dir/"
  say "checking that every requirement is in $dir or on the GPU image"
  GPU_HAS="$GPU_HAS" "$PY" - "$dir" <<'PYEOF'
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
        name = canonicalize_name(req.name)
        name = alias.get(name, name)
        if name not in have and name not in gpu and name not in seen:
            seen.add(name)
            missing.append(f'{name} (needed by {os.path.basename(wheel)})')
print('  wheels:', ', '.join(os.path.basename(w) for w in wheels))
if missing:
    print('  WARNING: not in the wheelhouse and not known on the GPU image:', '; '.join(missing))
else:
    print('  every requirement is in the wheelhouse or on the GPU image')
PYEOF
  (cd "$dir" && sha256sum ./*.whl optional/*.whl > MANIFEST.sha256)
  say "wheelhouse $dir: $(du -sh "$dir" | cut -f1) ($(ls "$dir"/*.whl "$dir"/optional/*.whl | wc -l) wheels) in $(( $(date +%s) - START ))s"
}

install_wheelhouse() {
  local dir
  dir=$(cd "$1" && pwd)
  local site=${GPU_CHECK_SITE:-/tmp/mmconvarch-gpu-site}
  local stamp
  stamp=$(cd "$dir" && ls ./*.whl | sort | tr '\n' ' ')
  if [ -f "$site/.wheelhouse" ] && [ "$(cat "$site/.wheelhouse")" = "$stamp" ]; then
    say "wheels already installed in $site"
  else
    say "installing $(ls "$dir"/*.whl | wc -l) wheels from $dir into $site (no index, no deps)"
    rm -rf "$site"
    "${PIP[@]}" install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
      "$dir"/*.whl
    echo "$stamp" > "$site/.wheelhouse"
  fi
  export PYTHONPATH="$site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  # mmengine needs pkg_resources (gone from setuptools>=81) and, on Python>=3.12, distutils,
  # which setuptools provides once imported
  if ! "$PY" -c 'import setuptools, pkg_resources' 2>/dev/null; then
    say "no setuptools<81 here (pkg_resources, distutils): adding $(ls "$dir"/optional/setuptools-*.whl)"
    "${PIP[@]}" install -q --no-index --no-deps --no-compile --target "$site" \
      "$dir"/optional/setuptools-*.whl
  fi
  "$PY" -c 'import torch, mmengine, mmcv, mmpretrain, mmconvarch; print("[gpu_check] torch",
torch.__version__, "cuda", torch.cuda.is_available(), "| mmengine", mmengine.__version__,
"| mmcv", mmcv.__version__, "| mmpretrain", mmpretrain.__version__)' || {
    echo "[gpu_check] the OpenMMLab packages do not import from $site (see above);" \
         "rebuild the wheelhouse with --make-wheelhouse, or add what is missing" >&2
    exit 1
  }
}

if [ -n "$MAKE_DIR" ]; then
  make_wheelhouse "$MAKE_DIR"
  exit 0
fi
if [ -n "$WHEELHOUSE" ]; then
  install_wheelhouse "$WHEELHOUSE"
fi
export PYTHONUNBUFFERED=1
set +e
"$PY" "$ROOT/tools/analysis/gpu_check.py" ${ARGS[@]+"${ARGS[@]}"}
rc=$?
set -e
say "done (exit $rc)"
exit $rc
