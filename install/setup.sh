#!/bin/bash
# One-command set-up: Debian packages, build into build/, the GIMP plug-in for this
# user, then a demo run. Idempotent: a second run only rebuilds what changed.
# Each step says what it does; a failure names the step and stops.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step_name=""
step() { step_name="$1"; echo "==> $1"; }
trap 'echo "setup.sh: step \"$step_name\" failed (exit $?); see the messages above." >&2' ERR

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

step "Debian packages"
mapfile -t wanted < <(grep -v '^\s*#' install/packages.txt | grep -v '^\s*$')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "    all ${#wanted[@]} packages installed"
else
  echo "    installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
# libtorch links the generic libblas.so.3: make sure it resolves to OpenBLAS (10x faster).
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
echo "    BLAS in use: ${blas:-unknown}"
case "$blas" in *openblas*) ;; *) echo "    warning: libblas.so.3 is not OpenBLAS; matrix products will be slow" ;; esac

step "Configure (meson, release build in build/)"
if [ -f build/build.ninja ]; then
  echo "    already configured"
else
  meson setup build --buildtype=release -Dplugin=enabled
fi

step "Build (takes a few minutes the first time)"
meson compile -C build

step "Install the GIMP plug-in for $(id -un)"
# GIMP finds it at its next start: Filters > Inpaint > Inpaint Selection...
bash install/install-plugin.sh build
echo "    models: install/fetch-model.sh downloads Stable Diffusion 1.5 inpainting (2.1 GB) into"
echo "    ${INPAINT_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/inpaint/models}; without one the classic fill is used"

step "Demo"
bash install/demo.sh
echo "==> Done. Run the tests with: meson test -C build"
