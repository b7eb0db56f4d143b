#include "engine/big_blocks.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "engine/torch_compat.h"

namespace inpaint {

std::optional<size_t> BlockRanges::take(size_t size) {
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < size) continue;
    const size_t offset = it->first, rest = it->second - size;
    free_.erase(it);
    if (rest) free_.emplace(offset + size, rest);
    used_.emplace(offset, size);
    in_use_ += size;
    high_water_ = std::max(high_water_, offset + size);
    return offset;
  }
  return std::nullopt;
}

size_t BlockRanges::give_back(size_t offset) {
  const auto used = used_.find(offset);
  if (used == used_.end()) return 0;
  const size_t block = used->second;
  size_t start = offset, size = block;
  in_use_ -= block;
  used_.erase(used);
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && next->first == start + size) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    const auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(start, size);
  return block;
}

size_t BlockRanges::end_in_use() const {
  size_t end = 0;
  for (const auto& [offset, size] : used_) end = std::max(end, offset + size);
  return end;
}

namespace {

constexpr size_t kMinBlock = size_t(1) << 20;
constexpr size_t kGrain = size_t(64) << 10;  // sizes and offsets: page and cache-line aligned
constexpr size_t kHugePage = size_t(2) << 20;

class BigBlocks final : public CpuAllocator {
 public:
  BigBlocks(char* base, size_t size) : base_(base), size_(size), ranges_(size) {}

  c10::DataPtr allocate_bytes(size_t n) const override {
    void* p = n >= kMinBlock ? take(n) : nullptr;
    if (!p) p = c10::alloc_cpu(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static void release(void* p);

  bool owns(const void* p) const {
    const char* c = static_cast<const char*>(p);
    return c >= base_ && c < base_ + size_;
  }

  void give_back(void* p) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ranges_.give_back(static_cast<char*>(p) - base_) == 0) std::abort();  // not one of ours: memory is corrupt
  }

  void release_free_pages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [offset, size] : ranges_.free_ranges()) {
      const size_t end = std::min(offset + size, touched_end_);
      if (end > offset) madvise(base_ + offset, end - offset, MADV_DONTNEED);
    }
    touched_end_ = ranges_.end_in_use();
  }

  size_t in_use() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ranges_.in_use();
  }

 private:
  void* take(size_t n) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto offset = ranges_.take((n + kGrain - 1) / kGrain * kGrain);
    if (!offset) return nullptr;
    touched_end_ = std::max(touched_end_, *offset + n);
    return base_ + *offset;
  }

  char* const base_;
  const size_t size_;
  mutable std::mutex mutex_;
  mutable BlockRanges ranges_;
  mutable size_t touched_end_ = 0;  // pages above have not been touched since the last release
};

BigBlocks* g_blocks = nullptr;  // never destroyed: tensors may be freed at exit

void BigBlocks::release(void* p) {
  if (g_blocks->owns(p))
    g_blocks->give_back(p);
  else
    c10::free_cpu(p);
}

}  // namespace

bool install_big_block_allocator() {
  if (g_blocks) return true;
  const char* setting = std::getenv("INPAINT_BIG_BLOCKS");
  if (setting && std::strcmp(setting, "0") == 0) return false;
  // Address space only (MAP_NORESERVE): pages exist once touched. As large as the
  // machine's memory, aligned to huge pages, which back it where the kernel allows.
  const size_t size = size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE)) / kHugePage * kHugePage;
  void* p = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage);
  madvise(base, size, MADV_HUGEPAGE);
  g_blocks = new BigBlocks(base, size);
  c10::SetCPUAllocator(g_blocks, /*priority=*/1);
  return true;
}

void release_free_big_blocks() {
  if (g_blocks) g_blocks->release_free_pages();
}

size_t big_block_bytes_in_use() { return g_blocks ? g_blocks->in_use() : 0; }

}  // namespace inpaint
