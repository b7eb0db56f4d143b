#!/bin/bash
# Memory benchmark (issue 5): seconds per step, total seconds and peak RSS of
# `inpaint run` on full-size random SD 1.5 inpainting weights for
#   (a) 512x512, whole-picture mask; (b) a 4000x3000 photo with a 3 % mask;
#   (c) 2048x2048 with a 30 % mask
# each at the default policy and at --max-memory 1G; then the same 512x512 run inside
# cgroup v1 memory caps (page cache counts there), smallest cap first that succeeds.
# Prints a Markdown report on stdout. Not a test: takes ~20 minutes on 2 cores.
#
#   bench/memory.sh [BUILD_DIR] [WORK_DIR]
source "$(dirname "$0")/common.sh"
steps=4
model=$work/sd15-inpaint-f16
gen_model "$model" sd15-inpaint f16

# Inputs: a real photo scaled to the sizes, elliptical masks of the stated areas.
convert "$shared/assets/images/astronaut.png" -resize '512x512!' "$work/a.png"
convert -size 512x512 xc:white "$work/a_mask.png"
convert "$shared/assets/images/kodim01.png" -resize '4000x3000!' "$work/b.png"
# 3 % of 12 MP = 360000 px: an ellipse of radii 400 x 286 (pi*400*286 = 359400).
convert -size 4000x3000 xc:black -fill white -draw "ellipse 2600,1200 400,286 0,360" "$work/b_mask.png"
convert "$shared/assets/images/eagle.png" -resize '2048x2048!' "$work/c.png"
# 30 % of 2048^2 = 1258291 px: a circle of radius 633.
convert -size 2048x2048 xc:black -fill white -draw "circle 1024,1024 1657,1024" "$work/c_mask.png"

# run NAME EXTRA... : one run; prints a table row.
run() {
  local name=$1
  shift
  local report=$work/$name.json
  rm -f "$report"
  if /usr/bin/time -f %M -o "$work/$name.time" "$inpaint" run --model "$model" --image "$work/${name%%-*}.png" \
      --mask "$work/${name%%-*}_mask.png" --prompt "a photo" --steps $steps --scheduler dpmpp_2m --seed 7 \
      --threads "$threads" --quiet --out "$work/$name.out.png" --report "$report" "$@" 2>"$work/$name.err"; then
    /usr/bin/python3 - "$report" "$work/$name.time" "$name" "$*" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
hwm_kb = int(open(sys.argv[2]).read().split()[-1])
regions = " ".join(f"{g['width']}x{g['height']}->{g['work_width']}x{g['work_height']}" for g in r["regions"])
print(f"| {sys.argv[3]} | {sys.argv[4] or 'default'} | {r['memory']['policy']} | {regions} | "
      f"{r['seconds_per_step']:.2f} | {r['seconds_total']:.1f} | {r['peak_rss_bytes'] / 2**30:.3f} | {hwm_kb / 2**20:.3f} |")
EOF
  else
    echo "| $name | $* | failed: $(tail -c 200 "$work/$name.err" | tr '\n' ' ') | | | | | |"
  fi
}

echo "## inpaint memory benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $threads threads"
echo
echo "Model: random-weight full-size SD 1.5 inpainting, f16 folder; $steps steps DPM++ 2M, CFG 7.5."
echo
echo "| case | options | policy | regions (crop -> model) | s/step | total s | peak RSS GB (report) | peak RSS GB (time) |"
echo "|---|---|---|---|---|---|---|---|"
run a
run a-1g --max-memory 1G
run b
run b-1g --max-memory 1G
run c
run c-1g --max-memory 1G

# cgroup v1 caps: the whole process (RSS + page cache) must stay under the cap.
cg=/sys/fs/cgroup/memory/inpaint-bench
if [ -w /sys/fs/cgroup/memory ]; then
  echo
  echo "### In a cgroup v1 memory cap (case a, --max-memory = cap)"
  echo
  echo "| cap | result | s/step | total s | slowdown vs uncapped default |"
  echo "|---|---|---|---|---|"
  base=$(/usr/bin/python3 -c "import json; print(json.load(open('$work/a.json'))['seconds_total'])")
  mkdir -p "$cg"
  for cap in 1G 900M 800M 700M 650M 600M; do
    echo 3 > /proc/sys/vm/drop_caches || true
    echo 0 > "$cg/memory.force_empty" 2>/dev/null || true
    echo "$cap" > "$cg/memory.limit_in_bytes"
    report=$work/cap-$cap.json
    rm -f "$report"
    if sh -c "echo \$\$ > $cg/tasks && exec \"$inpaint\" run --model \"$model\" --image \"$work/a.png\" \
        --mask \"$work/a_mask.png\" --prompt 'a photo' --steps $steps --scheduler dpmpp_2m --seed 7 \
        --threads $threads --quiet --out \"$work/cap.png\" --report \"$report\" --max-memory $cap" 2>"$work/cap.err"; then
      /usr/bin/python3 - "$report" "$cap" "$base" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | ok ({r['memory']['policy']}) | {r['seconds_per_step']:.2f} | {r['seconds_total']:.1f} | "
      f"{r['seconds_total'] / float(sys.argv[3]):.2f}x |")
EOF
    else
      echo "| $cap | failed (exit $?): $(tail -c 160 "$work/cap.err" | tr '\n' ' ') | | | |"
    fi
  done
  rmdir "$cg" 2>/dev/null || true
else
  echo "(no writable cgroup v1 memory controller: cap runs skipped)"
fi
