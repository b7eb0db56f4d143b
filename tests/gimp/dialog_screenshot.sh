#!/bin/bash
# Renders the plug-in's dialog under Xvfb (GIMP's own Script-Fu calls it interactively)
# and saves a screenshot: tests/gimp/dialog_screenshot.sh [BUILD_DIR] [OUT_PNG]
# (default docs/dialog-gimp3.png or docs/dialog-gimp2.png, after the GIMP it was built for).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
if readelf -d "$build/plugin/inpaint-gimp-engine" | grep -q 'libgimp-3\.0'; then gimp=3; else gimp=2; fi
out=${2:-$here/docs/dialog-gimp$gimp.png}
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
Xvfb "$display" -screen 0 900x900x24 -nolisten tcp &
pids+=($!)
sleep 2
new_image='(img (car (gimp-image-new 256 256 RGB)))'
if [ $gimp = 3 ]; then
  DISPLAY=$display GIMP3_DIRECTORY="$tmp/profile" timeout 120 gimp-console-3.0 -i -n -d -f -g "$tmp/gimprc" \
    --batch-interpreter=plug-in-script-fu-eval -b \
    "(let* ($new_image (layer (car (gimp-layer-new img \"photo\" 256 256 RGB-IMAGE 100 LAYER-MODE-NORMAL))))
       (gimp-image-insert-layer img layer 0 -1)
       (plug-in-inpaint #:run-mode RUN-INTERACTIVE #:image img #:drawables (vector layer)))" \
    --quit </dev/null >"$tmp/gimp.log" 2>&1 &
else
  DISPLAY=$display GIMP2_DIRECTORY="$tmp/profile" timeout 120 gimp-console-2.10 -i -n -c -d -f -g "$tmp/gimprc" -b \
    "(let* ($new_image (layer (car (gimp-layer-new img 256 256 RGB-IMAGE \"photo\" 100 LAYER-MODE-NORMAL))))
       (gimp-image-insert-layer img layer 0 -1)
       (plug-in-inpaint RUN-INTERACTIVE img layer \"\" \"\" \"\" 20 7.5 1.0 -1 \"\" -1))" \
    -b '(gimp-quit 0)' </dev/null >"$tmp/gimp.log" 2>&1 &
fi
pids+=($!)
# Wait for the dialog to be drawn (GIMP start-up + plug-in start).
for _ in $(seq 1 90); do
  sleep 1
  if DISPLAY=$display xwininfo -root -tree 2>/dev/null | grep -q '"Inpaint Selection"'; then break; fi
done
sleep 3
DISPLAY=$display import -window root "$tmp/screen.png"
convert "$tmp/screen.png" -trim +repage "$out"
echo "wrote $out"
