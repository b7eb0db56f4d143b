#!/bin/bash
# Renders the plug-in's dialog under Xvfb (GIMP's own Script-Fu calls it interactively)
# and saves a screenshot: tests/gimp/dialog_screenshot.sh [BUILD_DIR] [OUT_PNG]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
out=${2:-$here/docs/dialog.png}
tmp=$(mktemp -d)
display=:97
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/plug-ins/inpaint-gimp"
cp "$build/plugin/inpaint-gimp" "$build/plugin/inpaint-gimp-engine" "$tmp/plug-ins/inpaint-gimp/"
echo "(plug-in-path \"\${gimp_plug_in_dir}/plug-ins:$tmp/plug-ins\")" > "$tmp/gimprc"
Xvfb "$display" -screen 0 900x760x24 -nolisten tcp &
pids+=($!)
sleep 2
DISPLAY=$display GIMP2_DIRECTORY="$tmp/profile" timeout 120 gimp-console-2.10 -i -n -c -d -f -g "$tmp/gimprc" -b \
  '(let* ((img (car (gimp-image-new 256 256 RGB)))
          (layer (car (gimp-layer-new img 256 256 RGB-IMAGE "photo" 100 LAYER-MODE-NORMAL))))
     (gimp-image-insert-layer img layer 0 -1)
     (plug-in-inpaint RUN-INTERACTIVE img layer "" "" "" 20 7.5 1.0 -1 "" -1))' \
  -b '(gimp-quit 0)' </dev/null >"$tmp/gimp.log" 2>&1 &
pids+=($!)
# Wait for the dialog to be drawn (GIMP start-up + plug-in start).
for _ in $(seq 1 60); do
  sleep 1
  if DISPLAY=$display xwininfo -root -tree 2>/dev/null | grep -q '"Inpaint Selection"'; then break; fi
done
sleep 2
DISPLAY=$display import -window root "$tmp/screen.png"
convert "$tmp/screen.png" -trim +repage "$out"
echo "wrote $out"
