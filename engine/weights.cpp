#include "engine/weights.h"

#include <sstream>

#include "engine/error.h"
#include "engine/read_checks.h"

namespace inpaint {

int64_t TensorRef::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TensorMap tensors_of(const std::shared_ptr<SafetensorsFile>& file) {
  TensorMap map;
  for (const auto& t : file->tensors()) map[t.name] = TensorRef{file, &t, t.shape, 0};
  return map;
}

at::ScalarType scalar_type_of(DType dtype) {
  switch (dtype) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  throw Error("unknown dtype");
}

DType dtype_of(at::ScalarType type) {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::BOOL})
    if (scalar_type_of(d) == type) return d;
  throw Error(std::string("tensor type ") + c10::toString(type) + " cannot be stored");
}

at::Tensor view_of(const TensorRef& ref) {
  auto file = ref.file;  // the view keeps the mapping alive
  void* data = const_cast<uint8_t*>(file->data(*ref.info) + ref.byte_offset);
  const auto options = at::TensorOptions().dtype(scalar_type_of(ref.info->dtype));
  // A transposed matrix becomes a contiguous copy (one small projection): the layers
  // take contiguous weights.
  if (ref.transposed) return at::from_blob(data, {ref.shape[1], ref.shape[0]}, [file](void*) {}, options).t().contiguous();
  return at::from_blob(data, ref.shape, [file](void*) {}, options);
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

ParamLoader::ParamLoader(const TensorMap& source, std::string component, const LoraMap* loras)
    : source_(&source), loras_(loras), component_(std::move(component)) {}

ParamLoader::ParamLoader(std::string component) : component_(std::move(component)) {}

std::string scale_name(const std::string& weight_name) { return weight_name + "_scale"; }

at::Tensor ParamLoader::take_matrix(const std::string& name, std::vector<int64_t> shape, at::Tensor* scale,
                                    LoraFactors* lora) {
  if (loras_) {
    const auto l = loras_->find(name);
    if (l != loras_->end()) *lora = l->second;
  }
  const auto it = declaring() ? TensorMap::const_iterator() : source_->find(name);
  if (declaring() || it == source_->end() || it->second.info->dtype != DType::I8) {
    at::Tensor w = take(name, std::move(shape));
    specs_.back().matrix = true;
    return w;
  }
  specs_.push_back({name, shape, true});
  const std::string sname = scale_name(name);
  taken_[name] = taken_[sname] = true;
  const TensorRef& ref = it->second;
  if (ref.shape != shape) {
    wrong_shape_.push_back(name + " is " + shape_str(ref.shape) + ", expected " + shape_str(shape));
    return {};
  }
  const auto s = source_->find(sname);
  if (s == source_->end() || s->second.info->dtype != DType::F32 || s->second.shape != std::vector<int64_t>{shape[0]}) {
    wrong_shape_.push_back(name + " is int8 but " + sname + " is not F32 " + shape_str({shape[0]}));
    return {};
  }
  *scale = view_of(s->second);
  return view_of(ref);
}

at::Tensor ParamLoader::take(const std::string& name, std::vector<int64_t> shape) {
  specs_.push_back({name, shape});
  if (declaring()) return {};
  taken_[name] = true;
  auto it = source_->find(name);
  if (it == source_->end()) {
    missing_.push_back(name + " " + shape_str(shape));
    return {};
  }
  const TensorRef& ref = it->second;
  if (ref.shape != shape) {
    wrong_shape_.push_back(name + " is " + shape_str(ref.shape) + ", expected " +
                           shape_str(shape));
    return {};
  }
  const DType d = ref.info->dtype;
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16 && d != DType::F64) {
    wrong_shape_.push_back(name + " has dtype " + dtype_name(d) + ", expected a float type");
    return {};
  }
  // Vectors (biases, normalisation weights: a few MB in all) are widened here once, not
  // at each of their uses (about 500 small conversions per UNet evaluation).
  if (shape.size() == 1) {  // read now (widened), or by the normalisations as they are
    const at::Tensor v = view_of(ref);
    check_before_read(v);
    return d != DType::F32 ? v.to(at::kFloat) : v;
  }
  return view_of(ref);
}

std::vector<std::string> ParamLoader::unexpected() const {
  std::vector<std::string> out;
  if (declaring()) return out;
  for (const auto& [name, ref] : *source_)
    if (!taken_.count(name)) out.push_back(name);
  return out;
}

int64_t ParamLoader::parameter_count() const {
  int64_t n = 0;
  for (const auto& s : specs_) {
    int64_t k = 1;
    for (int64_t d : s.shape) k *= d;
    n += k;
  }
  return n;
}

void ParamLoader::check() const {
  if (missing_.empty() && wrong_shape_.empty()) return;
  std::ostringstream msg;
  msg << component_ << ": the weights do not fit the network";
  const size_t shown = 12;
  auto list = [&](const char* what, const std::vector<std::string>& items) {
    if (items.empty()) return;
    msg << "\n  " << items.size() << " " << what << ":";
    for (size_t i = 0; i < items.size() && i < shown; ++i) msg << "\n    " << items[i];
    if (items.size() > shown) msg << "\n    ... and " << items.size() - shown << " more";
  };
  list("missing", missing_);
  list("wrongly shaped", wrong_shape_);
  throw Error(msg.str());
}

}  // namespace inpaint
