// Named weights as zero-copy tensor views, and the loader networks take their
// parameters from. The loader collects every missing, wrongly shaped and unused
// tensor so that one error lists them all.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/safetensors.h"

namespace inpaint {

// A tensor (or a dim-0 slice of one, or a reshaped one) inside a mapped file.
struct TensorRef {
  std::shared_ptr<SafetensorsFile> file;
  const TensorInfo* info = nullptr;
  std::vector<int64_t> shape;  // the shape the network sees
  uint64_t byte_offset = 0;    // into the stored tensor's bytes (for dim-0 slices)
  bool transposed = false;     // stored as shape's transpose (OpenCLIP's text_projection)
  int64_t numel() const;
  uint64_t nbytes() const { return numel() * dtype_size(info->dtype); }
};
using TensorMap = std::map<std::string, TensorRef>;

// All tensors of a file under their stored names and shapes.
TensorMap tensors_of(const std::shared_ptr<SafetensorsFile>& file);
// Zero-copy, read-only view (the map is PROT_READ: never write into it).
at::Tensor view_of(const TensorRef& ref);
at::ScalarType scalar_type_of(DType dtype);
DType dtype_of(at::ScalarType type);  // throws for types safetensors cannot hold

struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool matrix = false;  // a linear or convolution weight: may be stored as int8
};

// A LoRA's change to one weight, kept low-rank: W' = W + up @ down, with the LoRA's
// scale and alpha/rank folded into `up` [out, r]; `down` is [r, in * kh * kw]. Several
// LoRAs on one weight are stacked along r. Applied where the weight is widened.
struct LoraFactors {
  at::Tensor up, down;
  bool defined() const { return up.defined(); }
};
using LoraMap = std::map<std::string, LoraFactors>;  // by weight name

// Int8 weights (`inpaint convert --int8`) are stored with one float scale per output
// channel beside them: w = q * NAME_scale[out].
std::string scale_name(const std::string& weight_name);

// Layers' weights packed for oneDNN (models/kernels/packed_conv.h), by weight name: collected at
// load so that they can be kept on disk and mapped at the next load (engine/packed_cache.h).
struct PackedConvWeight;
using PackedSlots = std::map<std::string, std::shared_ptr<PackedConvWeight>>;

class ParamLoader {
 public:
  // Loading mode: take() returns views of `source` (which must outlive the networks);
  // take_matrix() also the LoRA factors `loras` holds for the weight.
  ParamLoader(const TensorMap& source, std::string component, const LoraMap* loras = nullptr);
  // Declaring mode: take() records names and shapes and returns undefined tensors.
  explicit ParamLoader(std::string component);

  at::Tensor take(const std::string& name, std::vector<int64_t> shape);
  // A linear or convolution weight: float, or int8 with its scales (then *scale is set);
  // *lora is set when a LoRA adapts it.
  at::Tensor take_matrix(const std::string& name, std::vector<int64_t> shape, at::Tensor* scale, LoraFactors* lora);
  bool declaring() const { return source_ == nullptr; }
  // Layers record their packed-weight slots in `slots` (none when not set).
  void collect_packed(PackedSlots* slots) { packed_slots_ = slots; }
  PackedSlots* packed_slots() const { return packed_slots_; }

  const std::vector<ParamSpec>& specs() const { return specs_; }
  std::vector<std::string> missing() const { return missing_; }
  std::vector<std::string> wrong_shape() const { return wrong_shape_; }
  std::vector<std::string> unexpected() const;  // in the source, never taken
  int64_t parameter_count() const;
  // Throws one Error listing every missing / wrongly shaped / wrongly typed tensor.
  void check() const;

 private:
  const TensorMap* source_ = nullptr;
  const LoraMap* loras_ = nullptr;
  PackedSlots* packed_slots_ = nullptr;
  std::string component_;
  std::vector<ParamSpec> specs_;
  std::vector<std::string> missing_, wrong_shape_;
  std::map<std::string, bool> taken_;
};

// "a.b" + "c" -> "a.b.c"; an empty prefix gives "c".
std::string join(const std::string& prefix, const std::string& name);
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace inpaint
