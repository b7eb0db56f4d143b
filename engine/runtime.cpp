#include "engine/runtime.h"

#include <ATen/Parallel.h>
#include <malloc.h>

#include <algorithm>

namespace inpaint {

void init_runtime(int threads) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // blocks up to 1 GiB come from the heap and are reused
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and are not handed back to the kernel at each free
  at::set_num_threads(std::max(1, threads));
}

}  // namespace inpaint
