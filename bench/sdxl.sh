#!/bin/bash
# SDXL benchmark (issue 23): full-size random SDXL inpainting (f16 folder), a 1024x1024
# region, 2 threads, 4 steps (Euler, the model's scheduler; CFG 7.5):
#   - the default run (precision auto: bf16 where native), fp32, and --max-memory 2G;
#   - the default run inside a 4 GB cgroup v1 cap (page cache counts there), against
#     the uncapped default;
#   - a 24-megapixel photo with a small mask (one 1024x1024 region);
#   - LCM (4 steps, guidance 1) with a LoRA of LCM-LoRA SDXL's size (rank 64, random) and
#     TAESD's weights standing in for TAESDXL (the same network).
# Prints Markdown on stdout. Not a test: about 20 minutes on 2 cores.
#
#   bench/sdxl.sh [BUILD_DIR] [WORK_DIR]
source "$(dirname "$0")/common.sh"
model=$work/sdxl-inpaint-f16
gen_model "$model" sdxl-inpaint f16
lora=$work/lcm-lora-sdxl-standin.safetensors
[ -f "$lora" ] || "$inpaint" gen-lora --preset sdxl-inpaint --rank 64 --out "$lora" >/dev/null
convert "$shared/assets/images/eagle.png" -resize '1024x1024!' "$work/xl.png"
# 30 % of 1024^2: a circle of radius 317 (the region is the whole square).
convert -size 1024x1024 xc:black -fill white -draw "circle 512,512 829,512" "$work/xl_mask.png"
convert "$shared/assets/images/kodim01.png" -resize '6000x4000!' "$work/xl24.png"
convert -size 6000x4000 xc:black -fill white -draw "ellipse 3600,1500 200,150 0,360" "$work/xl24_mask.png"

export INPAINT_CACHE=$work/cache-sdxl
# run NAME IMAGE EXTRA...: one run; prints a table row. PREFIX (optional) runs it through a command.
run() {
  local name=$1 image=$2
  shift 2
  local report=$work/$name.json
  rm -f "$report"
  if ${PREFIX:-} /usr/bin/time -f %M -o "$work/$name.time" "$inpaint" run --model "$model" --image "$work/$image.png" \
      --mask "$work/${image}_mask.png" --prompt "a photo" --steps 4 --seed 7 --threads "$threads" --quiet \
      --out "$work/$name.out.png" --report "$report" "$@" 2>"$work/$name.err"; then
    /usr/bin/python3 - "$report" "$work/$name.time" "$name" "$*" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
hwm_kb = int(open(sys.argv[2]).read().split()[-1])
regions = " ".join(f"{g['width']}x{g['height']}->{g['work_width']}x{g['work_height']}" for g in r["regions"])
print(f"| {sys.argv[3]} | {sys.argv[4] or 'default'} | {r['settings']['precision']} | {r['memory']['policy']} | {regions} | "
      f"{r['seconds_per_step']:.2f} | {r['seconds_to_first_step']:.1f} | {r['seconds_total']:.1f} | "
      f"{r['peak_rss_bytes'] / 2**30:.2f} | {hwm_kb / 2**20:.2f} |")
EOF
  else
    echo "| $name | $* | failed: $(tail -c 200 "$work/$name.err" | tr '\n' ' ') | | | | | | | |"
  fi
}

echo "## inpaint SDXL benchmark, $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads"
echo
echo "Model: random-weight full-size SDXL inpainting, f16 folder ($(du -shL "$model" | cut -f1)); 4 steps, CFG 7.5 unless stated."
echo
echo "| case | options | precision | policy | regions (crop -> model) | s/step | first step s | total s | peak RSS GB (report) | peak RSS GB (time) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
run default xl
run fp32 xl --precision fp32
run budget-2g xl --max-memory 2G
run photo-24mp xl24
run lcm-taesd xl --scheduler lcm --guidance 1 --lora "$lora" --vae "$shared/assets/taesd"
run lcm-taesd-again xl --scheduler lcm --guidance 1 --lora "$lora" --vae "$shared/assets/taesd"

# A cgroup v1 cap of 4 GB on the whole process (RSS and page cache): the default plan
# reads the cap (engine/memory_plan.h). The weights (6.5 GB) cannot all stay cached.
cg=/sys/fs/cgroup/memory/inpaint-bench-sdxl
if [ -w /sys/fs/cgroup/memory ]; then
  mkdir -p "$cg"
  echo 0 > "$cg/memory.force_empty" 2>/dev/null || true
  echo 4G > "$cg/memory.limit_in_bytes"
  # Page cache is charged to the cgroup that reads a page first: dropped, so that the
  # weights are read inside the cap and count against it (a cold start, too).
  sync
  echo 3 > /proc/sys/vm/drop_caches || true
  printf '%s\n' "#!/bin/sh" "echo \$\$ > $cg/tasks" 'exec "$@"' > "$work/in-cgroup.sh"
  PREFIX="sh $work/in-cgroup.sh" run capped-4g xl
  usage="$(cat "$cg/memory.max_usage_in_bytes") bytes at most, $(cat "$cg/memory.failcnt") reclaims at the cap"
  rmdir "$cg" 2>/dev/null || true
  base=$(/usr/bin/python3 -c "import json; print(json.load(open('$work/default.json'))['seconds_total'])")
  capped=$(/usr/bin/python3 -c "import json; print(json.load(open('$work/capped-4g.json'))['seconds_total'])" 2>/dev/null || echo 0)
  echo
  echo "4 GB cgroup cap (page cache dropped first, then charged to the cap: $usage): $capped s against" \
    "$base s uncapped and warm ($(/usr/bin/python3 -c "print(f'{$capped / $base:.2f}')")x)."
else
  echo
  echo "(no writable cgroup v1 memory controller: the capped run is skipped)"
fi
