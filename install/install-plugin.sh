#!/bin/bash
# Installs the built GIMP plug-in for the current user, into the profile of the GIMP it
# was built for: GIMP 3 ($GIMP3_DIRECTORY or ~/.config/GIMP/3.0) or GIMP 2.10
# ($GIMP2_DIRECTORY or ~/.config/GIMP/2.10), as plug-ins/inpaint-gimp/.
# A profile GIMP has never created is created by GIMP itself first (one headless start):
# a plug-ins folder made by hand would make GIMP skip its own set-up of the profile, and
# it would then warn at every quit that its data folders do not exist.
# Usage: install-plugin.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: install-plugin.sh BUILD_DIR}
engine="$build/plugin/inpaint-gimp-engine"
if readelf -d "$engine" | grep -q 'libgimp-3\.0'; then
  gimp=3.0
  profile="${GIMP3_DIRECTORY:-$HOME/.config/GIMP/3.0}"
  first_start=(gimp-console-3.0 -i -d -f --batch-interpreter=plug-in-script-fu-eval -b '(gimp-quit TRUE)' --quit)
  export GIMP3_DIRECTORY="$profile"
else
  gimp=2.10
  profile="${GIMP2_DIRECTORY:-$HOME/.config/GIMP/2.10}"
  first_start=(gimp-console-2.10 -i -d -f -b '(gimp-quit 0)')
  export GIMP2_DIRECTORY="$profile"
fi
if [ ! -d "$profile" ]; then
  if ! command -v "${first_start[0]}" >/dev/null 2>&1; then
    echo "    GIMP $gimp is not installed: the plug-in is not installed (run this again after installing it)"
    exit 0
  fi
  echo "    GIMP $gimp has not run for $(id -un) yet: letting it create its profile $profile"
  timeout 300 "${first_start[@]}" </dev/null >/dev/null 2>&1 || true
  if [ ! -d "$profile" ]; then
    echo "    warning: GIMP did not create $profile; start GIMP once, then run this again" >&2
    exit 0
  fi
fi
plugdir="$profile/plug-ins/inpaint-gimp"
mkdir -p "$plugdir"
install -m 755 "$build/plugin/inpaint-gimp" "$plugdir/inpaint-gimp"
install -m 755 "$engine" "$plugdir/inpaint-gimp-engine"
# The CLIP vocabulary, for single-file checkpoints (engine/model_source.h: shipped_tokenizer_dirs).
mkdir -p "$plugdir/clip"
install -m 644 "$(dirname "$0")/../share/clip/vocab.json" "$(dirname "$0")/../share/clip/merges.txt" "$plugdir/clip/"
echo "    installed the GIMP $gimp plug-in: $plugdir/inpaint-gimp"
