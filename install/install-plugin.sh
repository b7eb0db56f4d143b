#!/bin/bash
# Installs the built GIMP 2.10 plug-in for the current user (or into $GIMP2_DIRECTORY).
# A profile GIMP has never created is created by GIMP itself first (one headless start):
# a plug-ins folder made by hand would make GIMP skip its own set-up of the profile, and
# it would then warn at every quit that its data folders do not exist.
# Usage: install-plugin.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: install-plugin.sh BUILD_DIR}
profile="${GIMP2_DIRECTORY:-$HOME/.config/GIMP/2.10}"
if [ ! -d "$profile" ]; then
  if ! command -v gimp-console-2.10 >/dev/null 2>&1; then
    echo "    GIMP 2.10 is not installed: the plug-in is not installed (run this again after installing it)"
    exit 0
  fi
  echo "    GIMP has not run for $(id -un) yet: letting it create its profile $profile"
  GIMP2_DIRECTORY="$profile" timeout 300 gimp-console-2.10 -i -d -f -b '(gimp-quit 0)' </dev/null >/dev/null 2>&1 || true
  if [ ! -d "$profile" ]; then
    echo "    warning: GIMP did not create $profile; start GIMP once, then run this again" >&2
    exit 0
  fi
fi
plugdir="$profile/plug-ins/inpaint-gimp"
mkdir -p "$plugdir"
install -m 755 "$build/plugin/inpaint-gimp" "$plugdir/inpaint-gimp"
install -m 755 "$build/plugin/inpaint-gimp-engine" "$plugdir/inpaint-gimp-engine"
echo "    installed $plugdir/inpaint-gimp"
