#!/bin/bash
# The demo setup.sh ends with: inpaint the bundled photo (install/demo/) with the best
# method available -- Stable Diffusion when a model is installed, the classic fill
# otherwise -- and say where the result is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe="$root/build/inpaint"
out="$root/build/demo"
mkdir -p "$out"
image="$root/install/demo/rocket.jpg"
mask="$root/install/demo/rocket_mask.png"
result="$out/rocket-inpainted.png"

model=$("$exe" models list | sed -n '/^Models in/,/^Available/p' | awk '$NF == "ok" {print $1; exit}')
if [ -n "$model" ]; then
  echo "    with the installed model $model (12 steps; a few minutes on a 2-core machine)"
  "$exe" run --model "$model" --image "$image" --mask "$mask" --prompt "clear evening sky" \
    --negative-prompt "tower, mast, pole" --steps 12 --scheduler dpmpp_2m --seed 1 --out "$result" \
    --report "$out/report.json" --quiet
else
  echo "    no model installed: the classic fill (inpaint models fetch downloads Stable Diffusion 1.5 inpainting)"
  "$exe" run --method classic --image "$image" --mask "$mask" --seed 1 --out "$result" --report "$out/report.json" --quiet
fi
echo "    inpainted $image -> $result"
