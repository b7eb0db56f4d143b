#include "models/packed_layout.h"

#include <cstdint>
#include <cstring>

namespace inpaint {
namespace {
// An enum field read as the int it is stored as: bytes from disk may hold any value, and
// loading one that is no enumerator is undefined.
template <class Enum>
int as_int(const Enum& e) {
  static_assert(sizeof(Enum) == sizeof(int), "enums are ints here");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}
}  // namespace

bool plausible_weight_layout(const dnnl_memory_desc_t& d) {
  constexpr int64_t kMaxDim = 1 << 16;
  if (d.ndims < 1 || d.ndims > 6 || as_int(d.data_type) != dnnl_f32 || d.offset0 != 0 || d.extra.flags != 0) return false;
  for (int i = 0; i < d.ndims; ++i)
    if (d.dims[i] < 1 || d.dims[i] > kMaxDim || d.padded_dims[i] < d.dims[i] || d.padded_dims[i] > d.dims[i] + 64 ||
        d.padded_offsets[i] != 0)
      return false;
  const int kind = as_int(d.format_kind);
  if (kind == dnnl_blocked) {
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    if (b.inner_nblks < 0 || b.inner_nblks > DNNL_MAX_NDIMS) return false;
    for (int k = 0; k < b.inner_nblks; ++k)
      if (b.inner_blks[k] < 1 || b.inner_blks[k] > 64 || b.inner_idxs[k] < 0 || b.inner_idxs[k] >= d.ndims) return false;
    for (int i = 0; i < d.ndims; ++i)
      if (b.strides[i] < 0 || b.strides[i] > kMaxDim * kMaxDim * 16) return false;
    return true;
  }
  if (kind == dnnl_format_kind_wino) {
    const dnnl_wino_desc_t& w = d.format_desc.wino_desc;
    const auto block = [](int v) { return v >= 1 && v <= 512; };
    const int format = as_int(w.wino_format);
    return format >= dnnl_wino_wei_aaOIoi && format <= dnnl_wino_wei_OBaaIBOIio && w.r == 3 &&
           w.alpha >= 4 && w.alpha <= 8 && w.ic >= 1 && w.ic <= kMaxDim && w.oc >= 1 && w.oc <= kMaxDim &&
           block(w.ic_block) && block(w.oc_block) && block(w.ic2_block) && block(w.oc2_block) && w.size > 0 &&
           w.size <= (size_t(1) << 34);
  }
  return false;
}

bool weight_layout_from_bytes(const std::string& bytes, dnnl_memory_desc_t* out) {
  if (bytes.size() != sizeof(dnnl_memory_desc_t)) return false;
  std::memcpy(out, bytes.data(), sizeof *out);
  return plausible_weight_layout(*out);
}

std::string layout_to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

bool layout_from_hex(const std::string& hex, std::string* bytes) {
  if (hex.size() % 2 || hex.size() > 2 * sizeof(dnnl_memory_desc_t)) return false;
  auto value = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  bytes->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = value(hex[i]), lo = value(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

}  // namespace inpaint
