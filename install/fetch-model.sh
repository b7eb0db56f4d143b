#!/bin/bash
# Downloads a model of the catalog (models/catalog.json) into the user's data folder and
# checks it: the same as `build/inpaint models fetch [NAME]`. No NAME: the default
# (Stable Diffusion 1.5 inpainting, fp16, about 2.1 GB). `build/inpaint models list`
# shows the names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$root/build/inpaint" ]; then
  echo "fetch-model.sh: build/inpaint is missing: run install/setup.sh first" >&2
  exit 1
fi
exec "$root/build/inpaint" models fetch "$@"
