#!/bin/sh
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) and runs each for a
# bounded time on a copy of its seed corpus. Usage: run.sh [SECONDS] [WORKDIR]
#   safetensors   the safetensors header parser (corpus/)
#   configs       config.json parsing and validation (corpus-configs/)
#   packed_cache  the packed cache's reader: header, checksum, layouts (corpus-packed-cache/)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-20}
work=${2:-$(mktemp -d)}
if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ not found (install/setup.sh installs it)"; exit 1
fi
flags="-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$root"
# fuzz NAME CORPUS MAX_LEN SOURCES... [-lLIB]
fuzz() {
  name=$1 corpus=$2 max_len=$3
  shift 3
  mkdir -p "$work/$name-corpus"
  cp "$here/$corpus"/* "$work/$name-corpus/"
  clang++ $flags "$here/fuzz_$name.cpp" "$@" -o "$work/fuzz_$name"
  "$work/fuzz_$name" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 \
    -artifact_prefix="$work/$name-" "$work/$name-corpus"
  echo "fuzz $name: no crash in ${seconds}s"
}
fuzz safetensors corpus 4096 "$root/engine/safetensors.cpp" "$root/engine/xxh3_avx2.cpp" "$root/engine/own_files.cpp"
fuzz configs corpus-configs 4096 "$root/engine/json_file.cpp" "$root/models/network_configs.cpp"
fuzz packed_cache corpus-packed-cache 4096 "$root/engine/safetensors.cpp" "$root/engine/xxh3_avx2.cpp" "$root/engine/own_files.cpp" \
  "$root/models/kernels/packed_layout.cpp" "$root/models/kernels/onednn.cpp" -ldnnl
