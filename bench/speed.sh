#!/bin/bash
# Speed benchmark (issue 7): on full-size random SD 1.5 inpainting (f16), 512x512, 2 threads:
#   - the machine's ceiling (bench_peak) and the UNet's efficiency against it (--profile);
#   - seconds per CFG step (20 steps DPM++ 2M, guidance 7.5) and the time per picture, also
#     with the direct convolution kernel only (--no-winograd);
#   - cold start: process start to the first denoising step, page cache warm;
#   - LCM with a LoRA of LCM-LoRA's size (4 steps, guidance 1), with the VAE and with TAESD:
#     the LoRA applied on the fly, and merged once into the LoRA cache.
# All of these in fp32 (--precision fp32); where the processor has native bf16, the
# 20-step run, the cold start with TAESD and LCM with TAESD also in bf16, each right after
# its fp32 twin, for the ratios side by side (issue 22).
# Prints Markdown on stdout. Not a test: about 13 minutes on 2 cores (16 with bf16).
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
native_bf16=$(/usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('native_bf16', ''))" "$peak_json")

# run NAME OPTIONS...: one 512x512 inpaint with a report in $work/NAME.json, in fp32;
# bf16 NAME OPTIONS...: the same in bf16 as NAME-bf16, where the processor has native bf16.
run() {
  local name=$1
  shift
  "$inpaint" run --model "$model" --image "$work/a.png" --mask "$work/a_mask.png" --prompt "a photo" --seed 7 \
    --threads "$threads" --quiet --out "$work/$name.png" --report "$work/$name.json" --precision "${precision:-fp32}" "$@"
}
bf16() {
  local name=$1
  shift
  rm -f "$work/$name-bf16.json"
  if [ -n "$native_bf16" ]; then precision=bf16 run "$name-bf16" "$@"; fi
}
export INPAINT_CACHE=$work/cache
rm -rf "$INPAINT_CACHE"
# The first run with a model packs its weights for oneDNN and keeps them in the cache
# (engine/packed_cache.h); later runs map them. One step, for its cost apart.
run first --steps 1 --scheduler dpmpp_2m
bf16 first --steps 1 --scheduler dpmpp_2m  # bf16 weights are packed (and kept) apart
run dpm --steps "$steps" --scheduler dpmpp_2m --profile
bf16 dpm --steps "$steps" --scheduler dpmpp_2m --profile
# The same with the direct convolution kernel only (its packed weights are kept apart: a
# first run writes them): the Winograd kernel's gain, side by side.
run direct-first --steps 1 --scheduler dpmpp_2m --no-winograd
run dpm-direct --steps "$steps" --scheduler dpmpp_2m --profile --no-winograd
run cold --steps 1 --scheduler dpmpp_2m   # page cache warm now: process start -> first step
run cold-taesd --steps 1 --scheduler lcm --guidance 1 --vae "$shared/assets/taesd"
bf16 cold-taesd --steps 1 --scheduler lcm --guidance 1 --vae "$shared/assets/taesd"
# The LoRA applied on the fly every step, then merged once into a fresh cache (the first
# run writes it after its picture, the second packs the merged weights), then as later runs find it;
# and once more packing in memory (no kept packed weights), for the ratio.
lcm=(--steps 4 --scheduler lcm --guidance 1 --lora "$lora")
run lcm-fly "${lcm[@]}" --no-lora-cache
run lcm-taesd-fly "${lcm[@]}" --no-lora-cache --vae "$shared/assets/taesd"
run lcm-first "${lcm[@]}" --vae "$shared/assets/taesd"
run lcm-second "${lcm[@]}" --vae "$shared/assets/taesd"  # packs the merged weights and keeps them
run lcm "${lcm[@]}"
run lcm-taesd "${lcm[@]}" --vae "$shared/assets/taesd"
bf16 lcm-second "${lcm[@]}" --vae "$shared/assets/taesd"  # packs the merged weights in bf16, keeps them
bf16 lcm-taesd "${lcm[@]}" --vae "$shared/assets/taesd"
run lcm-unkept "${lcm[@]}" --no-packed-cache

/usr/bin/python3 "$(dirname "$0")/speed_report.py" "$work" "$peak_json" "$threads" "$steps"
