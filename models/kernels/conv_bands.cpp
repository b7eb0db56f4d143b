#include "models/kernels/conv_bands.h"

#include <algorithm>

#include <ATen/Parallel.h>

#include "models/kernels/norm_bf16.h"
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

// The same in bf16 (dst bf16, channels last), with the activation: the steps and the
// rounding the kernel would do in one pass (AVX-512), where the f32 rows, their
// activation and oneDNN's rounding of them took three. For processors where
// norm_bf16_available(), and c a multiple of 16.
void fill_rows_bf16(const at::Tensor& x, const ConvInput& in, const at::Tensor& scale, const at::Tensor& shift,
                    int64_t up, int64_t u0, int64_t u1, const at::Tensor& dst) {
  const int64_t b = x.size(0), c = x.size(1), w = x.size(3);
  const PixelActivation activation = in.activation == ConvInput::kSilu   ? PixelActivation::silu
                                     : in.activation == ConvInput::kRelu ? PixelActivation::relu
                                                                         : PixelActivation::none;
  const at::Tensor s = in.norm ? scale.contiguous() : at::Tensor(), t = in.norm ? shift.contiguous() : at::Tensor();
  const bool f16 = x.scalar_type() == at::kHalf;
  const auto* from = static_cast<const char*>(x.data_ptr());
  auto* to = reinterpret_cast<uint16_t*>(dst.data_ptr<at::BFloat16>());
  const int64_t rows = u1 - u0;
  at::parallel_for(0, b * rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / rows, r = i % rows, source_row = (u0 + r) / up;
      pixels_to_bf16(from + (n * x.stride(0) + source_row * x.stride(2)) * x.element_size(), f16, w, c,
                     in.norm ? s.data_ptr<float>() + n * c : nullptr, in.norm ? t.data_ptr<float>() + n * c : nullptr,
                     activation, up, to + n * dst.stride(0) + r * dst.stride(2));
    }
  });
}

}  // namespace

bool bands_apply(const at::Tensor& x, const ConvInput& in, int64_t kernel, int64_t stride, int64_t padding) {
  return (x.scalar_type() == at::kFloat || x.scalar_type() == at::kHalf) && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         stride == 1 && in.pad_end == 0 && 2 * padding == kernel - 1;
}

at::Tensor conv_in_bands(const Compute& compute, const at::Tensor& x, const ConvInput& in, const at::Tensor& scale, const at::Tensor& shift,
                         const at::Tensor& weight, const at::Tensor& bias, std::shared_ptr<PackedConvWeight>& packed,
                         int64_t band_floats, int64_t band_rows, at::ScalarType out_type) {
  const int64_t b = x.size(0), c = x.size(1), k = weight.size(2), pad = (k - 1) / 2, up = in.upsample2x ? 2 : 1;
  const int64_t h = x.size(2) * up, w = x.size(3) * up;
  const at::TensorOptions f32 = x.options().dtype(at::kFloat).memory_format(at::MemoryFormat::ChannelsLast);
  at::Tensor out = at::empty({b, weight.size(0), h, w}, f32.dtype(out_type));
  const bool as_is = pad == 0 && !in.norm && in.activation == ConvInput::kNone && up == 1 && x.scalar_type() == at::kFloat;
  // bf16 products: bands made in bf16 (fill_rows_bf16) where the processor runs it.
  const bool bf16_band = compute.precision == Precision::bf16 && norm_bf16_available() && c % 16 == 0;
  // One image, f32: a band of output rows is dense, and oneDNN writes it in place. Else
  // each band's f32 result is a temporary, counted in the band's floats too: a 3-channel
  // image's band makes 128 channels (SDXL's encoder made a 512 MB one in a single band).
  const bool in_place = b == 1 && out_type == at::kFloat;
  const int64_t per_row = b * std::max(c * (w + 2 * pad), in_place ? 0 : weight.size(0) * w);
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
      band = at::empty({b, c, o1 - o0 + 2 * pad, w + 2 * pad}, f32.dtype(bf16_band ? at::kBFloat16 : at::kFloat));
      const int64_t u0 = std::max<int64_t>(0, o0 - pad), u1 = std::min(h, o1 + pad);
      if (pad > 0) {
        band.narrow(3, 0, pad).zero_();
        band.narrow(3, w + pad, pad).zero_();
        band.narrow(2, 0, u0 - (o0 - pad)).zero_();
        band.narrow(2, u1 - (o0 - pad), o1 + pad - u1).zero_();
      }
      const at::Tensor rows = band.narrow(2, u0 - (o0 - pad), u1 - u0).narrow(3, pad, w);
      if (bf16_band) {
        fill_rows_bf16(x, in, scale, shift, up, u0, u1, rows);
      } else {
        fill_rows(x, in, scale, shift, up, u0, u1, rows);
        if (in.activation == ConvInput::kSilu) at::silu_(band);  // the zeros stay zeros
        if (in.activation == ConvInput::kRelu) at::relu_(band);
      }
    }
    at::Tensor target = out.narrow(2, o0, o1 - o0);
    if (in_place)
      target = target.as_strided(target.sizes(), {target.numel(), 1, w * target.size(1), target.size(1)},
                                 target.storage_offset());
    const at::Tensor y = packed_conv2d(compute, band, weight, bias, 1, 0, packed, &widened, in_place ? target : at::Tensor());
    if (!y.defined()) return {};  // at the first band: they all have its shape
    if (!in_place) target.copy_(y);
  }
  return out;
}

}  // namespace inpaint
