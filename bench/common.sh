# Sourced by the bench scripts: their arguments [BUILD_DIR] [WORK_DIR], where things are,
# and the full-size random models they share (generated once into WORK_DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-/tmp/inpaint-bench}
shared=${INPAINT_SHARED:-$here/../shared}
inpaint=$build/inpaint
threads=${THREADS:-2}
mkdir -p "$work"

# gen_model DIR PRESET DTYPE: a full-size random model, unless DIR exists.
gen_model() {
  if [ ! -d "$1" ]; then
    echo "generating $2 ($3) in $1 ..." >&2
    "$inpaint" gen-model --preset "$2" --dtype "$3" --tokenizer "$shared/assets/clip" --out "$1" >&2
  fi
}
