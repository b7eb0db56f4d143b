// Process-wide set-up every entry point (CLI, plug-in, tests, benches) calls once.
#pragma once
#include <cstddef>

namespace inpaint {

// Sets libtorch's intra-op threads (it starts with one here) and keeps large freed
// blocks in memory: glibc would otherwise mmap and unmap every tensor above 128 KiB,
// and the page faults of re-touching fresh memory cost more than the arithmetic.
// Tensors of 1 MB and more come from a range of their own (engine/big_blocks.h).
void init_runtime(int threads);

// The matrix-product kernels OpenBLAS chose for this processor ("Cooperlake", "Haswell",
// ...; OPENBLAS_CORETYPE overrides its choice), or "" when the BLAS is not OpenBLAS.
const char* blas_kernels();

// Returns freed heap and big-block pages to the kernel (between stages).
void release_free_memory();

// Process memory high-water mark (VmHWM) and current resident set (VmRSS), in bytes.
size_t peak_rss_bytes();
size_t current_rss_bytes();

// Since the process started (exec, before libraries were loaded), 10 ms resolution.
double seconds_since_process_start();

}  // namespace inpaint
