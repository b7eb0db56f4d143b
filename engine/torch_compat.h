// Where libtorch 1.13 (Debian 12) and 2.x (Debian 13) differ for us: c10::Allocator's
// allocate() is const in 1.x and not in 2.x, which also wants copy_data(). Allocators
// derive from CpuAllocator and implement allocate_bytes().
#pragma once
#include <c10/core/Allocator.h>
#include <torch/csrc/api/include/torch/version.h>

#include <cstddef>
#include <cstring>

namespace inpaint {

class CpuAllocator : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR >= 2
  c10::DataPtr allocate(size_t n) override { return allocate_bytes(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#else
  c10::DataPtr allocate(size_t n) const override { return allocate_bytes(n); }
#endif

 protected:
  virtual c10::DataPtr allocate_bytes(size_t n) const = 0;
};

}  // namespace inpaint
