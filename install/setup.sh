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
# The release decides a few package names (install/packages-debian*.txt), among them
# which GIMP the plug-in is built for: GIMP 2.10 on Debian 12, GIMP 3 on Debian 13.
release=$(. /etc/os-release && echo "${VERSION_ID:-}")
case "$release" in
  12 | 13) plugin=enabled ;;
  *) echo "    warning: Debian ${release:-?} is neither 12 nor 13: trying Debian 13's package names"; release=13; plugin=auto ;;
esac
mapfile -t wanted < <(cat install/packages.txt "install/packages-debian$release.txt" | grep -v '^\s*#' | grep -v '^\s*$')
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
  meson configure build -Dplugin=$plugin  # a build configured before libgimp was installed finds it now
  echo "    already configured"
else
  meson setup build --buildtype=release -Dplugin=$plugin
fi

step "Build (takes a few minutes the first time)"
meson compile -C build

step "Install the GIMP plug-in for $(id -un)"
# GIMP finds it at its next start: Filters > Inpaint > Inpaint Selection...
if [ -x build/plugin/inpaint-gimp ]; then
  bash install/install-plugin.sh build
else
  echo "    no GIMP plug-in built (no libgimp found): the command-line program works without it"
fi
echo "    models: install/fetch-model.sh downloads Stable Diffusion 1.5 inpainting (2.1 GB) into"
echo "    ${INPAINT_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/inpaint/models}; without one the classic fill is used"

step "Demo"
bash install/demo.sh
echo "==> Done. Run the tests with: meson test -C build"
