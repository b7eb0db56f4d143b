#!/bin/bash
# Speed benchmark (issue 7): on full-size random SD 1.5 inpainting (f16), 512x512, 2 threads:
#   - the machine's ceiling (bench_peak) and the UNet's efficiency against it (--profile);
#   - seconds per CFG step (20 steps DPM++ 2M, guidance 7.5) and the time per picture;
#   - cold start: process start to the first denoising step, page cache warm;
#   - LCM with a LoRA of LCM-LoRA's size (4 steps, guidance 1), with the VAE and with TAESD.
# Prints Markdown on stdout. Not a test: about 10 minutes on 2 cores.
#
#   bench/speed.sh [BUILD_DIR] [WORK_DIR]
# OpenBLAS picks its kernels for the processor unless OPENBLAS_CORETYPE pins them (some
# containers pin Haswell's, half the speed on AVX-512 machines): the heading says which.
source "$(dirname "$0")/common.sh"
steps=${STEPS:-20}
model=$work/sd15-inpaint-f16
gen_model "$model" sd15-inpaint f16
lora=$work/lcm-lora-standin.safetensors
[ -f "$lora" ] || "$inpaint" gen-lora --preset sd15-inpaint --rank 64 --out "$lora" >/dev/null
convert "$shared/assets/images/astronaut.png" -resize '512x512!' "$work/a.png"
convert -size 512x512 xc:white "$work/a_mask.png"

peak_json=$("$build/bench/bench_peak" "$threads" 2 | tee "$work/peak.txt" | tail -1)
peak=$(/usr/bin/python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(max(j['gemm_gflops'], j['conv_gflops']))" "$peak_json")

# run NAME OPTIONS...: one 512x512 inpaint with a report in $work/NAME.json
run() {
  local name=$1
  shift
  "$inpaint" run --model "$model" --image "$work/a.png" --mask "$work/a_mask.png" --prompt "a photo" --seed 7 \
    --threads "$threads" --quiet --out "$work/$name.png" --report "$work/$name.json" "$@"
}
run dpm --steps "$steps" --scheduler dpmpp_2m --profile
run cold --steps 1 --scheduler dpmpp_2m   # page cache warm now: process start -> first step
run cold-taesd --steps 1 --scheduler lcm --guidance 1 --vae "$shared/assets/taesd"
run lcm --steps 4 --scheduler lcm --guidance 1 --lora "$lora"
run lcm-taesd --steps 4 --scheduler lcm --guidance 1 --lora "$lora" --vae "$shared/assets/taesd"

/usr/bin/python3 - "$work" "$peak" "$threads" "$steps" <<'PY'
import json, sys, datetime
work, peak, threads, steps = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
r = {n: json.load(open(f"{work}/{n}.json")) for n in ("dpm", "cold", "cold-taesd", "lcm", "lcm-taesd")}
p = r["dpm"]["profile"]
blas = r["dpm"]["settings"].get("blas_kernels", "?")
print(f"## Speed, {datetime.date.today()}, {threads} threads, OpenBLAS kernels {blas}")
print()
print(open(f"{work}/peak.txt").read().replace("\n", "  \n"))
print(f"Full-size random SD 1.5 inpainting (f16 weights), 512x512 whole-picture mask, CFG 7.5.")
print()
print("| run | s/step | total s | peak RSS GB | first step at s |")
print("|---|---|---|---|---|")
for n, label in (("dpm", f"DPM++ 2M, {steps} steps, CFG 7.5"), ("lcm", "LCM + LoRA, 4 steps, guidance 1"),
                 ("lcm-taesd", "LCM + LoRA, 4 steps, guidance 1, TAESD")):
    x = r[n]
    print(f"| {label} | {x['seconds_per_step']:.2f} | {x['seconds_total']:.1f} | {x['peak_rss_bytes']/1e9:.2f} | "
          f"{x['seconds_to_first_step']:.2f} |")
print()
eff = p["gflop_per_step"] / r["dpm"]["seconds_per_step"] / peak
print(f"UNet: {p['gflop_per_step']:.0f} GFLOP per CFG step (counted), {p['gflop_per_step']/r['dpm']['seconds_per_step']:.1f} GFLOPS "
      f"= {100*eff:.0f} % of the measured peak {peak:.1f} GFLOPS.")
print()
print("| operation | s | % of the loop | GFLOPS |")
print("|---|---|---|---|")
for k, v in p.items():
    if isinstance(v, dict):
        g = v.get("gflop", 0)
        print(f"| {k} | {v['seconds']:.1f} | {100*v['seconds']/p['denoise_seconds']:.1f} | {g/v['seconds'] if g and v['seconds'] else 0:.1f} |")
print()
for name, label in (("cold", "VAE"), ("cold-taesd", "TAESD, guidance 1")):
    c = r[name]
    print(f"Cold start (warm page cache), {label}: process start -> first denoising step {c['seconds_to_first_step']:.2f} s "
          f"(stages before it: " + ", ".join(f"{k} {v:.2f} s" for k, v in c["stages"].items() if k in ("encode prompt", "encode image")) + ")  ")
print()
d, l, t = r["dpm"]["seconds_total"], r["lcm"]["seconds_total"], r["lcm-taesd"]["seconds_total"]
print(f"LCM 4 steps vs DPM++ {steps} steps, per picture: {l:.1f} s vs {d:.1f} s = 1/{d/l:.1f}; with TAESD {t:.1f} s = 1/{d/t:.1f}.")
PY
