// Convolutions through oneDNN's own API with the weight packed once, at its first use,
// into the blocked layout oneDNN's kernel reads. at::conv2d hands oneDNN a plain weight,
// which it reorders at every call (4 ms for a 1280x1280x3x3 one), and reaches 310-330
// GFLOPS at the UNet's shapes here against 390 for the same kernel on packed weights.
// 3x3 convolutions over many pixels use oneDNN's Winograd kernel where it has one
// (ComputePolicy::winograd_from_pixels): 2.2-3x faster at the VAE's and the UNet's
// 64x64 shapes here, within 3e-6 of the direct kernel relative to the output.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/weights.h"
#include "models/compute.h"

namespace inpaint {

// The packed weight, in the stored dtype (f16 stays f16: widened at each call, as before).
struct PackedConvWeight;

// at::conv2d(x, weight, bias, stride, padding) on a 4-D weight, packing it into `packed`
// at the first call (the weight's pages in its mapped file are released then: the packed
// copy replaces them). x may be contiguous or channels last (1x1 kernels: channels last
// only, as linear layers use them); the result has x's layout.
// x is f32, or bf16 under bf16 products (no rounding then); the result is f32, or bf16
// under bf16 products when `out` is (the products are rounded once, from f32 sums).
// Returns an undefined tensor where oneDNN does not run it this way (the caller then
// uses at::conv2d).
// `widened`, when given, keeps the widened packed weight between calls on one weight
// (a tiled convolution's tiles): widened at the first. `out`, when given, is where the
// result goes (of the result's size and x's layout; it is returned).
// `accumulate`: the result is added to what `out` (f32) holds; undefined (out untouched)
// where the kernel cannot do that itself.
// `relu`: max(0, ·) of the result (after the accumulation), applied by the kernel as it
// writes it (oneDNN's eltwise post-op): no pass of its own.
at::Tensor packed_conv2d(const Compute& c, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                         int64_t stride, int64_t padding, std::shared_ptr<PackedConvWeight>& packed,
                         at::Tensor* widened = nullptr, const at::Tensor& out = {}, bool accumulate = false,
                         bool relu = false);

// oneDNN's bf16 kernels on AMX run a 3x3 convolution over more than 640 input channels
// faster as parts of at most 640 channels, each adding its products to the output: at
// the UNet's 960-2560-channel shapes (2 threads, batch 1 and 2) 1.2-1.9x with oneDNN 2.6,
// 1.0-1.8x with 3.7. How many parts a weight's input channels make (1: none).
// input_parts_of: by shape alone (which layers keep packed slots for parts);
// input_parts: where it applies (bf16 products on AMX), else 1.
int64_t input_parts_of(const at::Tensor& weight);
int64_t input_parts_of(int64_t kernel, int64_t in_channels);
int64_t input_parts(const Compute& c, const at::Tensor& weight);
// The packed slot's name of part `part` of a weight named `weight_name`.
std::string input_part_name(const std::string& weight_name, int64_t part, int64_t parts);
// packed_conv2d over the input_parts(c, weight) parts of x's channels, each packed in
// its slot of `packed` (made where missing): the first writes the output (with the
// bias), the others add to it. Undefined where the first part does not run so.
at::Tensor packed_conv2d_in_parts(const Compute& c, const at::Tensor& x, const at::Tensor& weight,
                                  const at::Tensor& bias, int64_t stride, int64_t padding,
                                  std::vector<std::shared_ptr<PackedConvWeight>>& packed);

// Frees this thread's buffer for widened packed weights (up to 118 MB for the UNet's
// largest), kept between calls. Left in place, it sits between the free memory the next
// network's large blocks would reuse, and those then take fresh pages.
void release_widening_buffer();

// An empty slot for a layer's packed weight (see PackedSlots in engine/weights.h).
std::shared_ptr<PackedConvWeight> new_packed_slot();
// Empties a slot (the next call packs anew): streamed weights are packed per call.
void drop_packed(PackedConvWeight& w);

// A packed weight as kept on disk: its elements and oneDNN's layout for them (bytes of
// a memory descriptor, valid for the packing_signature(c) it was made with). False when
// not packed.
bool packed_contents(const PackedConvWeight& w, at::Tensor& data, std::string& layout);
// Whether the weight was packed in this process (not mapped from a kept file).
bool packed_in_process(const PackedConvWeight& w);
// Fills an unpacked slot from disk; false (slot untouched) when the layout bytes are not
// a descriptor of data's size.
bool restore_packed(PackedConvWeight& w, const at::Tensor& data, const std::string& layout);
// oneDNN's version, the instruction set its kernels use and where the Winograd kernel is
// used (ComputePolicy::winograd_from_pixels): layouts differ between them.
std::string packing_signature(const Compute& c);

// Whether the weight is packed for oneDNN's Winograd kernel (ComputePolicy::winograd_from_pixels:
// f32, transformed), and how many convolutions ran through that kernel in this process.
bool packed_for_winograd(const PackedConvWeight& w);
int64_t winograd_convolutions();
// Whether this oneDNN has a Winograd kernel for this CPU (oneDNN 3.x has none on the
// CPUs here: the direct kernel runs).
bool winograd_available();

}  // namespace inpaint
