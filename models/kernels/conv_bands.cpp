#include "models/kernels/conv_bands.h"

#include <algorithm>

#include "models/kernels/packed_conv.h"

namespace inpaint {
namespace {

// x's rows [u0, u1) of the input as the convolution sees it (upsampled by `up`), with
// the input steps applied, into `dst` (those rows of the band, without the side padding).
void fill_rows(const at::Tensor& x, const ConvInput& in, const at::Tensor& scale, const at::Tensor& shift,
               int64_t up, int64_t u0, int64_t u1, at::Tensor dst) {
  auto put = [&](at::Tensor to, const at::Tensor& from) {
    if (in.norm)
      at::addcmul_out(to, shift.dim() == to.dim() ? shift : shift.unsqueeze(-1), from,
                      scale.dim() == to.dim() ? scale : scale.unsqueeze(-1));
    else
      to.copy_(from);
  };
  if (up == 1) return put(dst, x.narrow(2, u0, u1 - u0));
  // Nearest-neighbour upsampling: each source pixel fills a 2x2 square. Rows of one
  // parity read consecutive source rows; a row's columns come in pairs of one pixel.
  const int64_t b = x.size(0), c = x.size(1), w = x.size(3);
  for (int64_t parity = 0; parity < 2; ++parity) {
    const int64_t first = u0 + (u0 % 2 == parity ? 0 : 1);
    if (first >= u1) continue;
    const int64_t rows = (u1 - first + 1) / 2;
    const at::Tensor to = dst.narrow(2, first - u0, 2 * rows - 1).slice(2, 0, c10::nullopt, 2).view({b, c, rows, w, 2});
    put(to, x.narrow(2, first / 2, rows).unsqueeze(4).expand({b, c, rows, w, 2}));
  }
}

}  // namespace

bool bands_apply(const at::Tensor& x, const ConvInput& in, int64_t kernel, int64_t stride, int64_t padding) {
  return x.scalar_type() == at::kFloat && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         stride == 1 && in.pad_end == 0 && 2 * padding == kernel - 1;
}

at::Tensor conv_in_bands(const Compute& compute, const at::Tensor& x, const ConvInput& in, const at::Tensor& scale, const at::Tensor& shift,
                         const at::Tensor& weight, const at::Tensor& bias, std::shared_ptr<PackedConvWeight>& packed,
                         int64_t band_floats, int64_t band_rows) {
  const int64_t b = x.size(0), c = x.size(1), k = weight.size(2), pad = (k - 1) / 2, up = in.upsample2x ? 2 : 1;
  const int64_t h = x.size(2) * up, w = x.size(3) * up;
  at::Tensor out = at::empty({b, weight.size(0), h, w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const bool as_is = pad == 0 && !in.norm && in.activation == ConvInput::kNone && up == 1;
  const int64_t per_row = b * c * (w + 2 * pad);
  const int64_t most = as_is ? h : band_rows > 0 ? band_rows : std::max<int64_t>(1, band_floats / per_row - 2 * pad);
  const int64_t bands = (h + most - 1) / most, rows = (h + bands - 1) / bands;  // even bands
  at::Tensor widened;
  for (int64_t next = 0; next < h; next += rows) {
    // The last band ends at the image's end with the others' height (recomputing a few
    // rows of the one before): one kernel plan and one weight layout serve every band.
    const int64_t o0 = std::min(next, h - rows), o1 = o0 + rows;
    at::Tensor band;
    if (as_is) {
      band = x.narrow(2, o0, o1 - o0);
    } else {
      // Input rows [o0 - pad, o1 + pad), columns [-pad, w + pad): zero outside the image.
      band = at::empty({b, c, o1 - o0 + 2 * pad, w + 2 * pad}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
      const int64_t u0 = std::max<int64_t>(0, o0 - pad), u1 = std::min(h, o1 + pad);
      if (pad > 0) {
        band.narrow(3, 0, pad).zero_();
        band.narrow(3, w + pad, pad).zero_();
        band.narrow(2, 0, u0 - (o0 - pad)).zero_();
        band.narrow(2, u1 - (o0 - pad), o1 + pad - u1).zero_();
      }
      fill_rows(x, in, scale, shift, up, u0, u1, band.narrow(2, u0 - (o0 - pad), u1 - u0).narrow(3, pad, w));
      if (in.activation == ConvInput::kSilu) at::silu_(band);  // the zeros stay zeros
      if (in.activation == ConvInput::kRelu) at::relu_(band);
    }
    at::Tensor target = out.narrow(2, o0, o1 - o0);
    // One image: the band of output rows is dense; oneDNN writes it in place.
    if (b == 1) target = target.as_strided(target.sizes(), {target.numel(), 1, w * target.size(1), target.size(1)},
                                           target.storage_offset());
    const at::Tensor y = packed_conv2d(compute, band, weight, bias, 1, 0, packed, &widened, b == 1 ? target : at::Tensor());
    if (!y.defined()) return {};  // at the first band: they all have its shape
    if (b != 1) target.copy_(y);
  }
  return out;
}

}  // namespace inpaint
