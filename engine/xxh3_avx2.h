// XXH3 compiled for AVX2 (engine/xxh3_avx2.cpp), as the caches' checksums use it where
// the processor has AVX2: the digest of `size` bytes fed to XXH3's streaming update in
// pieces of `piece` bytes, for tests to compare with the baseline build's.
#pragma once
#include <cstddef>
#include <cstdint>

namespace inpaint {

uint64_t xxh3_streamed_avx2(const void* data, size_t size, size_t piece);

}  // namespace inpaint
