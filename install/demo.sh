#!/bin/bash
# The demo setup.sh ends with: a real inpaint. With an installed model it uses that;
# otherwise it writes a tiny random-weight model (needs CLIP tokenizer files), which
# shows the whole path works but paints noise-like texture.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe="$root/build/inpaint"
data="${XDG_DATA_HOME:-$HOME/.local/share}/inpaint"
shared="$root/../shared/assets"
out="$root/build/demo"
mkdir -p "$out"

model=""
for m in "$data"/models/*; do
  if [ -e "$m" ]; then model="$m"; break; fi
done
if [ -z "$model" ]; then
  tok=""
  for d in "${INPAINT_TOKENIZER:-}" "$data/tokenizer" "$shared/clip"; do
    if [ -n "$d" ] && [ -f "$d/vocab.json" ]; then tok="$d"; break; fi
  done
  if [ -z "$tok" ]; then
    echo "    no model installed and no tokenizer files: skipping the demo"
    echo "    (install/fetch-model.sh downloads a model when you are online)"
    exit 0
  fi
  model="$out/tiny-sd15-inpaint"
  echo "    no model installed: writing a tiny random-weight model to $model"
  "$exe" gen-model --preset tiny-sd15-inpaint --seed 1 --tokenizer "$tok" --out "$model" --force >/dev/null 2>&1
fi
image="$shared/images/astronaut.png"
mask="$shared/images/astronaut_mask.png"
if [ ! -f "$image" ]; then
  echo "    no demo photo found; model check only:"
  "$exe" info "$model"
  exit 0
fi
"$exe" run --model "$model" --image "$image" --mask "$mask" --prompt "a round mission patch" \
  --steps 4 --scheduler dpmpp_2m --seed 1 --out "$out/astronaut-inpainted.png" --quiet
echo "    inpainted $image -> $out/astronaut-inpainted.png (model: $model)"
