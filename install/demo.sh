#!/bin/bash
# The demo setup.sh ends with: show what the tool finds in a model. Uses an installed
# model when there is one, else writes a tiny random one (needs CLIP tokenizer files).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe="$root/build/inpaint"
data="${XDG_DATA_HOME:-$HOME/.local/share}/inpaint"
for m in "$data"/models/*; do
  if [ -e "$m" ]; then
    echo "    inspecting installed model $m"
    "$exe" info "$m"
    exit 0
  fi
done
tok=""
for d in "${INPAINT_TOKENIZER:-}" "$data/tokenizer" "$root/../shared/assets/clip"; do
  if [ -n "$d" ] && [ -f "$d/vocab.json" ]; then tok="$d"; break; fi
done
if [ -z "$tok" ]; then
  echo "    no model installed and no tokenizer files: skipping the demo"
  echo "    (install/fetch-model.sh downloads a model when you are online)"
  exit 0
fi
out="$root/build/demo/tiny-sd15-inpaint"
"$exe" gen-model --preset tiny-sd15-inpaint --seed 1 --tokenizer "$tok" --out "$out" --force >/dev/null 2>&1
"$exe" info "$out"
echo "    demo model: $out"
