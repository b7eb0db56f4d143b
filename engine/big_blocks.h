// Tensors of 1 MB and more from one reserved address range, reused lowest address first.
//
// glibc's heap (with init_runtime's thresholds) keeps freed blocks, but small long-lived
// allocations land between them, so a later stage's large tensors often do not fit in
// the holes and the heap grows instead: a 512² decode after the UNet grew it to 1.6 GB
// for 0.66 GB of live tensors. Every new page is a page fault that zeroes it, slow on
// this machine (~1 GB/s per thread). Here, large blocks live apart from small ones,
// freed blocks merge with their neighbours and stay in memory, and the lowest free
// range that fits is used, so each stage reuses the pages the previous one touched.
#pragma once
#include <cstddef>
#include <map>
#include <optional>
#include <unordered_map>

namespace inpaint {

// The bookkeeping, in offsets: the lowest free range that fits is taken, a range given
// back merges with free neighbours.
class BlockRanges {
 public:
  explicit BlockRanges(size_t size) { free_.emplace(0, size); }
  std::optional<size_t> take(size_t size);  // its offset; none when no free range fits
  size_t give_back(size_t offset);          // the block's size; 0 when no block starts there
  const std::map<size_t, size_t>& free_ranges() const { return free_; }  // offset -> size
  size_t in_use() const { return in_use_; }
  size_t end_in_use() const;  // end of the highest block in use (0 when none)
  size_t high_water() const { return high_water_; }  // highest end ever handed out

 private:
  std::map<size_t, size_t> free_;
  std::unordered_map<size_t, size_t> used_;
  size_t in_use_ = 0, high_water_ = 0;
};

// Makes libtorch's CPU allocator take tensors of 1 MB and more from the range (smaller
// ones and any that do not fit use libtorch's own). False when the range could not be
// reserved or INPAINT_BIG_BLOCKS=0 is set (for side-by-side measurements).
bool install_big_block_allocator();

// Hands the pages of free ranges back to the kernel (as malloc_trim does for the heap).
void release_free_big_blocks();

// Bytes in live blocks of the range.
size_t big_block_bytes_in_use();

}  // namespace inpaint
