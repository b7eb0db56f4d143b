#include "engine/runtime.h"

#include <ATen/Parallel.h>
#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include <dlfcn.h>
#include <unistd.h>

#include "engine/big_blocks.h"

namespace inpaint {

const char* blas_kernels() {
  const auto core_name = reinterpret_cast<char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return core_name ? core_name() : "";
}

void init_runtime(int threads) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // blocks up to 1 GiB come from the heap and are reused
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and are not handed back to the kernel at each free
  install_big_block_allocator();       // tensors of 1 MB and more: apart from small blocks
  at::set_num_threads(std::max(1, threads));
}

namespace {
size_t status_field(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return static_cast<size_t>(std::stoull(line.substr(key.size()))) * 1024;
  return 0;
}
}  // namespace

void release_free_memory() {
  malloc_trim(0);
  release_free_big_blocks();
}

double seconds_since_process_start() {
  std::ifstream stat("/proc/self/stat"), uptime("/proc/uptime");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
  }
  double up = 0;
  uptime >> up;
  return up - std::stod(field) / double(sysconf(_SC_CLK_TCK));
}

size_t peak_rss_bytes() { return status_field("VmHWM:"); }
size_t current_rss_bytes() { return status_field("VmRSS:"); }

}  // namespace inpaint
