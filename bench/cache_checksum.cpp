// What verifying a kept cache file costs (engine/packed_cache.h, engine/lora_cache.h):
// maps each file given and times SafetensorsFile::verify_checksum, as a warm run does
// before using it, on THREADS threads. Usage: bench_cache_checksum RUNS THREADS FILE...
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "engine/error.h"
#include "engine/safetensors.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s RUNS THREADS FILE...\n", argv[0]);
    return 2;
  }
  const int runs = std::atoi(argv[1]), threads = std::atoi(argv[2]);
  try {
    for (int run = 0; run < runs; ++run)
      for (int i = 3; i < argc; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const auto file = inpaint::SafetensorsFile::open(argv[i]);  // mapped afresh: page faults counted
        const auto result = file->verify_checksum(/*release_pages=*/false, threads);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("run %d  %s  %.2f GB  %.3f s  %.1f GB/s  %s\n", run + 1, argv[i], file->file_size() / 1e9, s,
                    file->file_size() / 1e9 / s,
                    result == inpaint::SafetensorsFile::Checksum::ok ? "ok" : "NOT ok");
      }
  } catch (const inpaint::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
