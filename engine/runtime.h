// Process-wide set-up every entry point (CLI, plug-in, tests, benches) calls once.
#pragma once

namespace inpaint {

// Sets libtorch's intra-op threads (it starts with one here) and keeps large freed
// blocks in the heap: glibc would otherwise mmap and unmap every tensor above 128 KiB,
// and the page faults of re-touching fresh memory cost more than the arithmetic.
void init_runtime(int threads);

}  // namespace inpaint
