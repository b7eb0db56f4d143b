#include "engine/model_convert.h"

#include <memory>
#include <utility>

#include "engine/error.h"
#include "engine/lora.h"
#include "engine/model_folder.h"

namespace fs = std::filesystem;

namespace inpaint {

std::pair<at::Tensor, at::Tensor> quantize_int8(const at::Tensor& weight) {
  const at::Tensor w = weight.to(at::kFloat).reshape({weight.size(0), -1});
  const at::Tensor scale = w.abs().amax(1).clamp_min(1e-30) / 127.0;
  const at::Tensor q = (w / scale.unsqueeze(1)).round().clamp(-127, 127).to(at::kChar);
  return {q.reshape(weight.sizes()).contiguous(), scale.contiguous()};
}

namespace {
void write_folder(const ModelSource& model, const ConvertOptions& o, const fs::path& tmp,
                  const std::function<void(const std::string&)>& progress);
}  // namespace

void convert_model(const ModelSource& model, const ConvertOptions& o,
                   const std::function<void(const std::string&)>& progress) {
  for (const std::string& c : o.int8)
    if (!model.has(c)) throw Error("convert: no component named '" + c + "'");
  // Never into (or over) what is being read: the model, its tokenizer, its LoRAs.
  std::vector<fs::path> inputs = o.inputs;
  inputs.insert(inputs.end(), {model.path, model.tokenizer_dir});
  if (!model.tokenizer_2_dir.empty()) inputs.push_back(model.tokenizer_2_dir);
  for (const auto& [name, c] : model.components) inputs.insert(inputs.end(), c.files.begin(), c.files.end());
  check_model_output(o.out, o.force, inputs);
  const fs::path tmp = fresh_partial(o.out);
  try {
    write_folder(model, o, tmp, progress);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);  // this process's own partial output
    throw;
  }
  put_in_place(tmp, o.out);
}

namespace {
void write_folder(const ModelSource& model, const ConvertOptions& o, const fs::path& tmp,
                  const std::function<void(const std::string&)>& progress) {
  for (const std::string& name : component_names(model.family)) {
    const Component& c = model.component(name);
    fs::create_directories(tmp / name);
    write_json(tmp / name / "config.json", c.config);
    const bool quantize = o.int8.count(name) > 0;
    std::vector<Pending> tensors;
    for (const ParamSpec& s : declared_params(name, c.config)) {
      const auto it = c.tensors.find(s.name);
      if (it == c.tensors.end()) throw Error(name + ": " + s.name + " is missing (see inpaint info)");
      const TensorRef& ref = it->second;
      const DType stored = ref.info->dtype;
      // The weight as it will be used: with LoRAs merged in for good.
      const auto l = c.loras.find(s.name);
      const std::function<at::Tensor()> value =
          l == c.loras.end() ? std::function<at::Tensor()>([ref] { return view_of(ref); })
                             : [ref, f = l->second] { return merged_weight(ref, f); };
      if (stored == DType::I8) throw Error(name + " is int8 already: convert from the f16/f32 model");
      if (quantize && s.matrix) {
        // Quantised once: the values' entry (written first, names are sorted) keeps the
        // scales it computed for the scales' entry.
        auto scales = std::make_shared<at::Tensor>();
        tensors.push_back({{s.name, DType::I8, s.shape}, [value, scales] {
                             auto [q, scale] = quantize_int8(value());
                             *scales = scale;
                             return q;
                           }});
        tensors.push_back({{scale_name(s.name), DType::F32, {s.shape[0]}}, [value, scales] {
                             if (!scales->defined()) *scales = quantize_int8(value()).second;
                             return std::exchange(*scales, at::Tensor());
                           }});
      } else {
        const DType out = o.half && (stored == DType::F32 || stored == DType::F64) ? DType::F16 : stored;
        tensors.push_back({{s.name, out, s.shape}, [value, out] { return in_dtype(value(), out); }});
      }
    }
    std::sort(tensors.begin(), tensors.end(), [](const Pending& a, const Pending& b) { return a.entry.name < b.entry.name; });
    std::map<std::string, std::string> metadata = {{"format", "pt"}, {"converter", "inpaint convert"}};
    if (quantize) metadata["quantization"] = "int8 symmetric per output channel: weight = q * weight_scale[out]";
    write_tensors(tmp / name / weights_file_name(name), tensors, metadata, progress);
  }
  fs::create_directories(tmp / "scheduler");
  write_json(tmp / "scheduler" / "scheduler_config.json", model.scheduler_config);
  for (const bool second : {false, true}) {
    const fs::path& from = second ? model.tokenizer_2_dir : model.tokenizer_dir;
    if (from.empty()) continue;
    const fs::path to = tmp / (second ? "tokenizer_2" : "tokenizer");
    if (fs::exists(from / "special_tokens_map.json")) {
      fs::create_directories(to);
      for (const auto& e : fs::directory_iterator(from))
        if (e.is_regular_file()) fs::copy_file(e.path(), to / e.path().filename());
    } else {
      write_tokenizer(to, from, tokenizer_pad(model.family, second));
    }
  }
  write_json(tmp / "model_index.json", model_index_json(model.inpainting(), model.family));
}
}  // namespace

}  // namespace inpaint
