#include "models/kernels/packed_layout.h"

#include <cstdint>

namespace inpaint {

bool plausible_weight_layout(const onednn::Layout& l) {
  constexpr int64_t kMaxDim = 1 << 16;
  const size_t ndims = l.dims.size();
  if (ndims < 1 || !(l.f32 || l.bf16) || l.offset0 != 0 || l.extra_flags) return false;
  if (l.padded_dims.size() != ndims || l.padded_offsets.size() != ndims) return false;
  for (size_t i = 0; i < ndims; ++i)
    if (l.dims[i] < 1 || l.dims[i] > kMaxDim || l.padded_dims[i] < l.dims[i] || l.padded_dims[i] > l.dims[i] + 64 ||
        l.padded_offsets[i] != 0)
      return false;
  if (l.kind == onednn::Layout::Kind::blocked) {
    if (l.strides.size() != ndims || l.inner_blks.size() != l.inner_idxs.size()) return false;
    for (size_t k = 0; k < l.inner_blks.size(); ++k)
      if (l.inner_blks[k] < 1 || l.inner_blks[k] > 64 || l.inner_idxs[k] < 0 || l.inner_idxs[k] >= int64_t(ndims))
        return false;
    for (int64_t s : l.strides)
      if (s < 0 || s > kMaxDim * kMaxDim * 16) return false;
    return true;
  }
  if (l.kind == onednn::Layout::Kind::winograd) {
    // Formats 1-4: dnnl_wino_wei_aaOIoi to dnnl_wino_wei_OBaaIBOIio (oneDNN 2.x only).
    const auto block = [](int v) { return v >= 1 && v <= 512; };
    return l.wino_format >= 1 && l.wino_format <= 4 && l.r == 3 &&
           l.alpha >= 4 && l.alpha <= 8 && l.ic >= 1 && l.ic <= kMaxDim && l.oc >= 1 && l.oc <= kMaxDim &&
           block(l.ic_block) && block(l.oc_block) && block(l.ic2_block) && block(l.oc2_block) && l.wino_size > 0 &&
           l.wino_size <= (uint64_t(1) << 34);
  }
  return false;
}

std::optional<BlockedView> blocked_view(const onednn::Layout& l) {
  const size_t ndims = l.dims.size();
  if (l.kind != onednn::Layout::Kind::blocked || l.offset0 != 0 || l.strides.size() != ndims ||
      l.padded_dims.size() != ndims || l.inner_blks.size() != l.inner_idxs.size())
    return std::nullopt;
  BlockedView view;
  for (size_t d = 0; d < ndims; ++d) {
    if (l.padded_dims[d] != l.dims[d]) return std::nullopt;
    std::vector<int64_t> sizes{0}, strides{l.strides[d]};
    int64_t inner = 1;
    for (size_t j = 0; j < l.inner_blks.size(); ++j) {
      if (l.inner_idxs[j] != int64_t(d)) continue;
      if (l.inner_blks[j] < 1) return std::nullopt;
      int64_t stride = 1;  // the inner blocks after it
      for (size_t k = j + 1; k < l.inner_blks.size(); ++k) stride *= l.inner_blks[k];
      sizes.push_back(l.inner_blks[j]);
      strides.push_back(stride);
      inner *= l.inner_blks[j];
    }
    if (l.dims[d] % inner != 0) return std::nullopt;
    sizes[0] = l.dims[d] / inner;
    view.sizes.push_back(std::move(sizes));
    view.strides.push_back(std::move(strides));
  }
  return view;
}

std::vector<int64_t> BlockedView::flat_sizes() const {
  std::vector<int64_t> flat;
  for (const auto& s : sizes) flat.insert(flat.end(), s.begin(), s.end());
  return flat;
}

std::vector<int64_t> BlockedView::flat_strides() const {
  std::vector<int64_t> flat;
  for (const auto& s : strides) flat.insert(flat.end(), s.begin(), s.end());
  return flat;
}

std::optional<dnnl::memory::desc> weight_layout_from_bytes(const std::string& bytes) {
  auto desc = onednn::from_bytes(bytes);
  if (!desc || !plausible_weight_layout(onednn::layout_of(*desc))) return std::nullopt;
  return desc;
}

std::string layout_to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

bool layout_from_hex(const std::string& hex, std::string* bytes) {
  if (hex.size() % 2 || hex.size() > (size_t(64) << 10)) return false;
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
