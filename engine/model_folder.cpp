#include "engine/model_folder.h"

#include <unistd.h>

#include <fstream>

#include "engine/error.h"
#include "engine/json_file.h"
#include "engine/own_files.h"
#include "engine/weights.h"

namespace fs = std::filesystem;

namespace inpaint {

at::Tensor in_dtype(const at::Tensor& t, DType dtype) { return t.to(scalar_type_of(dtype)).contiguous(); }

void write_tensors(const fs::path& path, const std::vector<Pending>& tensors,
                   const std::map<std::string, std::string>& metadata,
                   const std::function<void(const std::string&)>& progress, bool checksum) {
  std::vector<SafetensorsWriter::Entry> entries;
  for (const auto& t : tensors) entries.push_back(t.entry);
  SafetensorsWriter writer(path, entries, metadata, checksum);
  for (const auto& t : tensors) {
    const at::Tensor value = t.make();
    writer.write_next(t.entry.name, value.data_ptr(), value.nbytes());
  }
  writer.finish();
  if (progress) progress("wrote " + path.string());
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error(path.string() + ": cannot write");
}

void write_tokenizer(const fs::path& dir, const fs::path& source, const std::string& pad) {
  fs::create_directories(dir);
  for (const char* f : {"vocab.json", "merges.txt"})
    fs::copy_file(source / f, dir / f, fs::copy_options::overwrite_existing);
  write_json(dir / "special_tokens_map.json",
             {{"bos_token", "<|startoftext|>"}, {"eos_token", "<|endoftext|>"},
              {"pad_token", pad}, {"unk_token", "<|endoftext|>"}});
  write_json(dir / "tokenizer_config.json",
             {{"tokenizer_class", "CLIPTokenizer"}, {"model_max_length", 77},
              {"do_lower_case", true}, {"bos_token", "<|startoftext|>"},
              {"eos_token", "<|endoftext|>"}, {"pad_token", pad}, {"unk_token", "<|endoftext|>"}});
}

nlohmann::json model_index_json(bool inpainting, Family family) {
  nlohmann::json j = {{"_class_name", inpainting ? "StableDiffusionInpaintPipeline" : "StableDiffusionPipeline"},
                      {"_diffusers_version", "0.25.1"},
                      {"scheduler", {"diffusers", "PNDMScheduler"}},
                      {"text_encoder", {"transformers", "CLIPTextModel"}},
                      {"tokenizer", {"transformers", "CLIPTokenizer"}},
                      {"unet", {"diffusers", "UNet2DConditionModel"}},
                      {"vae", {"diffusers", "AutoencoderKL"}},
                      {"requires_safety_checker", false}, {"_written_by", kWrittenBy}};
  if (family == Family::SDXL) {
    j.erase("requires_safety_checker");
    j.update({{"_class_name", inpainting ? "StableDiffusionXLInpaintPipeline" : "StableDiffusionXLPipeline"},
              {"scheduler", {"diffusers", "EulerDiscreteScheduler"}},
              {"text_encoder_2", {"transformers", "CLIPTextModelWithProjection"}},
              {"tokenizer_2", {"transformers", "CLIPTokenizer"}},
              {"force_zeros_for_empty_prompt", true}, {"requires_aesthetics_score", false}});
  }
  return j;
}

namespace {
bool written_by_us(const fs::path& out) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(out, ec);
  try {
    if (fs::is_directory(st)) return read_json_file(out / "model_index.json").value("_written_by", "") == kWrittenBy;
    if (fs::is_regular_file(st)) {
      const auto& meta = SafetensorsFile::open(out)->metadata();
      for (const char* key : {"written_by", "generator", "converter"})
        if (meta.count(key) && meta.at(key).rfind(kWrittenBy, 0) == 0) return true;
    }
  } catch (const std::exception&) {
  }
  return false;
}
}  // namespace

void check_model_output(const fs::path& out, bool force, const std::vector<fs::path>& inputs) {
  if (out.empty()) throw Error("--out: empty path");
  for (const fs::path& in : inputs)
    if (!in.empty() && (is_within(out, in) || is_within(in, out)))
      throw Error(out.string() + " overlaps " + in.string() + ", which this command reads: choose another --out");
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(out, ec))) return;
  if (!force) throw Error(out.string() + ": exists already (pass --force to replace it)");
  if (!written_by_us(out))
    throw Error(out.string() + ": exists and was not written by inpaint, so --force does not replace it: "
                "remove it yourself or choose another --out");
}

fs::path fresh_partial(const fs::path& out) {
  const fs::path partial = partial_name(out);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(partial, ec)))
    throw Error(partial.string() + " exists (left by an interrupted run?): remove it, or choose another --out");
  return partial;
}

void put_in_place(const fs::path& partial, const fs::path& out) {
  std::error_code ec;
  const fs::path folder = out.has_parent_path() ? out.parent_path() : fs::path(".");
  const std::string aside = out.filename().string() + "." + std::to_string(::getpid()) + ".old";
  if (fs::exists(fs::symlink_status(out, ec))) fs::rename(out, folder / aside);
  fs::rename(partial, out);
  remove_entry(folder, aside);
}

std::string weights_file_name(const std::string& component) {
  return component.rfind("text_encoder", 0) == 0 ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
}

}  // namespace inpaint
