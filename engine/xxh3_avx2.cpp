// XXH3 over long inputs with AVX2: 10.9-11.1 GB/s on one thread here against SSE2's
// 5.6-5.8 (x86-64's baseline, which the rest of the build targets). Called where the
// processor has AVX2 (engine/safetensors.cpp), for the caches' checksums. Under clang
// (the fuzz targets) it is built for the baseline as the rest.
// The whole file is built for AVX2: it includes no header with inline functions of
// external linkage (std:: templates), whose AVX2 copies the linker could hand to the
// baseline code. XXH_INLINE_ALL makes xxhash's own static.
#include "engine/xxh3_avx2.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2")
// xxhash.h picks its vector code (and includes the intrinsics) by __AVX2__, which the
// pragma leaves undefined.
#define XXH_VECTOR XXH_AVX2
#include <immintrin.h>
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace inpaint {

void xxh3_update_avx2(XXH3_state_t* state, const void* data, size_t size) { XXH3_64bits_update(state, data, size); }

uint64_t xxh3_streamed_avx2(const void* data, size_t size, size_t piece) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (size_t done = 0; done < size; done += piece)
    xxh3_update_avx2(state, static_cast<const char*>(data) + done, piece < size - done ? piece : size - done);
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return digest;
}

}  // namespace inpaint
