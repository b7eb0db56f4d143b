#!/bin/bash
# What each model costs (issue 8, README "Models"): disk, peak memory and time for one
# picture on this machine, with full-size random-weight stand-ins for the real models
# (same shapes, same compute): SD 1.5 inpainting f16 (as fetched), SD 2 inpainting f32 (as
# fetched), and the classic fill (no model) on the demo-sized photo and on 12 MP.
# Prints a Markdown table on stdout. Not a test: takes ~20 minutes on 2 cores.
#
#   bench/models.sh [BUILD_DIR] [WORK_DIR]
source "$(dirname "$0")/common.sh"
steps=${STEPS:-20}
gen_model "$work/sd15-inpaint-f16" sd15-inpaint f16
gen_model "$work/sd2-inpaint-f32" sd2-inpaint f32
if [ ! -f "$work/b.png" ]; then
  convert "$shared/assets/images/kodim01.png" -resize '4000x3000!' "$work/b.png"
  convert -size 4000x3000 xc:black -fill white -draw "ellipse 2600,1200 400,286 0,360" "$work/b_mask.png"
fi
photo=$shared/assets/images/astronaut.png
mask=$shared/assets/images/astronaut_mask.png

# row LABEL DISK IMAGE MASK RUN-OPTIONS...
row() {
  local label=$1 disk=$2 image=$3 mask=$4
  shift 4
  local report=$work/cost.json
  rm -f "$report"
  if "$inpaint" run --image "$image" --mask "$mask" --prompt "a photo" --seed 7 --threads "$threads" --quiet \
      --out "$work/cost.png" --report "$report" "$@" 2>"$work/cost.err"; then
    /usr/bin/python3 - "$report" "$label" "$disk" "$*" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["settings"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {s['width']}x{s['height']} | "
      f"{r['peak_rss_bytes'] / 1e9:.2f} | {r['seconds_total']:.1f} | {r['seconds_per_step']:.2f} |")
PY
  else
    echo "| $label | $disk | $* | failed: $(tail -c 160 "$work/cost.err" | tr '\n' ' ') | | | |"
  fi
}
disk() { du -shL --apparent-size "$1" | cut -f1; }

echo "## What each model costs, $(date -u +%Y-%m-%d), $(nproc) cores, $threads threads"
echo
echo "One picture (astronaut.png 512x512, 2 % mask, one region worked at 512x512; and a 4000x3000 photo"
echo "with a 3 % mask); DPM++ 2M, CFG 7.5; random weights of the real shapes. seconds_total excludes image files."
echo
echo "| model | disk | options | picture | peak RSS GB | total s | s/step |"
echo "|---|---|---|---|---|---|---|"
row "SD 1.5 inpainting (f16)" "$(disk "$work/sd15-inpaint-f16")" "$photo" "$mask" \
    --model "$work/sd15-inpaint-f16" --steps "$steps" --scheduler dpmpp_2m
row "SD 1.5 inpainting (f16)" "$(disk "$work/sd15-inpaint-f16")" "$photo" "$mask" \
    --model "$work/sd15-inpaint-f16" --steps "$steps" --scheduler dpmpp_2m --max-memory 1G
row "SD 2 inpainting (f32)" "$(disk "$work/sd2-inpaint-f32")" "$photo" "$mask" \
    --model "$work/sd2-inpaint-f32" --steps "$steps" --scheduler dpmpp_2m
row "classic fill" "0" "$photo" "$mask" --method classic
row "classic fill" "0" "$work/b.png" "$work/b_mask.png" --method classic
