#!/bin/sh
# Builds the safetensors fuzz target with clang (libFuzzer + ASan + UBSan) and runs it
# for a bounded time on a copy of the seed corpus. Usage: run.sh [SECONDS] [WORKDIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-20}
work=${2:-$(mktemp -d)}
if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ not found (install/setup.sh installs it)"; exit 1
fi
mkdir -p "$work/corpus"
cp "$here"/corpus/* "$work/corpus/"
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root" "$here/fuzz_safetensors.cpp" "$root/engine/safetensors.cpp" "$root/engine/own_files.cpp" -o "$work/fuzz_safetensors"
"$work/fuzz_safetensors" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -artifact_prefix="$work/" "$work/corpus"
echo "fuzz: no crash in ${seconds}s"
