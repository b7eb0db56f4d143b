#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "engine/error.h"
#include "engine/model_generator.h"
#include "engine/model_info.h"
#include "engine/model_presets.h"
#include "engine/model_source.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;

namespace {

// A generated tiny model (cached per preset for the whole test run).
fs::path tiny_model(const std::string& preset, bool single_file, uint64_t seed = 7) {
  const fs::path tokenizer = test::shared("assets/clip");
  if (tokenizer.empty()) return {};
  const fs::path dir = test::temp_dir("gen-" + preset + (single_file ? "-single" : "") + "-" + std::to_string(seed));
  GenerateOptions o;
  o.preset = preset;
  o.seed = seed;
  o.single_file = single_file;
  o.tokenizer_dir = tokenizer;
  o.out = single_file ? dir / "model.safetensors" : dir / "model";
  generate_model(o);
  return o.out;
}

// A single-file checkpoint with a real header and a sparse (unwritten) data section.
fs::path sparse_checkpoint(const fs::path& dir, const std::string& preset) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& e : single_file_entries(preset, DType::F16)) {
    uint64_t n = dtype_size(e.dtype);
    for (int64_t d : e.shape) n *= d;
    header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  const std::string text = header.dump();
  const fs::path p = dir / (preset + ".safetensors");
  {
    std::ofstream out(p, std::ios::binary);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(uint64_t(text.size()) >> (8 * i)));
    out << text;
  }
  fs::resize_file(p, 8 + text.size() + offset);
  fs::create_directories(dir / "tokenizer");
  // A minimal tokenizer that loads (inspect_model checks it): the special tokens and one word.
  std::ofstream(dir / "tokenizer/vocab.json") << R"({"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2, "!": 3})";
  std::ofstream(dir / "tokenizer/merges.txt") << "#version: 0.2\n";
  return p;
}

const ComponentReport& part(const ModelReport& r, const std::string& name) {
  for (const auto& c : r.components)
    if (c.name == name) return c;
  FAIL("no component " << name);
  return r.components[0];
}

}  // namespace

TEST_CASE("fixture models open with no missing, wrongly shaped or unexpected tensor") {
  REQUIRE_SHARED(fixtures, "fixtures");
  std::vector<fs::path> models;
  for (const auto& set : fs::directory_iterator(fixtures))
    if (fs::is_directory(set.path() / "models"))
      for (const auto& entry : fs::directory_iterator(set.path() / "models")) models.push_back(entry.path());
  CHECK(models.size() >= 3);  // SD 1.5, SD 2 and SDXL
  for (const fs::path& path : models) {
    CAPTURE(path.string());
    const ModelSource m = ModelSource::open(path);
    const ModelReport r = inspect_model(m);
    CHECK(m.inpainting());
    for (const auto& c : r.components) {
      CAPTURE(c.name);
      CHECK(c.error.empty());
      CHECK(c.missing.empty());
      CHECK(c.wrong_shape.empty());
      CHECK(c.unexpected.empty());
      CHECK(c.parameters > 0);
    }
    CHECK(r.ok());
    // SD 2 models use OpenCLIP (gelu) text encoders; SDXL ones have two.
    const std::string name = path.filename().string();
    CHECK((m.family == Family::SD2) == (name.find("sd2") != std::string::npos));
    CHECK((m.family == Family::SDXL) == (name.find("sdxl") != std::string::npos));
    CHECK(r.components.size() == (m.family == Family::SDXL ? 4u : 3u));
  }
}

TEST_CASE("SDXL: the full-size preset declares the real model's parameters; a folder needs both text encoders") {
  // diffusers/stable-diffusion-xl-1.0-inpainting-0.1: UNet 2,567,463,684 as SDXL base plus
  // conv_in's 5 more input channels (320 x 5 x 3 x 3); CLIP ViT-L 123,060,480;
  // OpenCLIP bigG with its projection 694,659,840; the VAE as SD's.
  const ModelPreset p = model_preset("sdxl-inpaint");
  const std::map<std::string, int64_t> expected = {{"unet", 2567463684 + 14400}, {"text_encoder", 123060480},
                                                   {"text_encoder_2", 694659840}, {"vae", 83653863}};
  for (const auto& [component, count] : expected) {
    CAPTURE(component);
    int64_t total = 0;
    for (const ParamSpec& s : declared_params(component, p.config(component))) {
      int64_t n = 1;
      for (int64_t d : s.shape) n *= d;
      total += n;
    }
    CHECK(total == count);
  }

  const fs::path folder = tiny_model("tiny-sdxl-inpaint", false);
  if (folder.empty()) return;
  const ModelSource m = ModelSource::open(folder);
  CHECK(m.family == Family::SDXL);
  CHECK(m.architecture() == "SDXL inpainting (9-channel UNet)");
  CHECK(m.force_zeros_for_empty_prompt);
  CHECK(m.tokenizer_2_dir == folder / "tokenizer_2");
  CHECK(inspect_model(m).ok());
  // Without the second encoder in model_index.json, the UNet's conditions cannot be made.
  const fs::path d = test::temp_dir("sdxl-half");
  fs::copy(folder, d / "model", fs::copy_options::recursive);
  nlohmann::json index = nlohmann::json::parse(std::ifstream(d / "model/model_index.json"));
  index.erase("text_encoder_2");
  std::ofstream(d / "model/model_index.json") << index.dump();
  try {
    ModelSource::open(d / "model");
    FAIL("an SDXL UNet without text_encoder_2 opened");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("no text_encoder_2") != std::string::npos);
  }
}

TEST_CASE("generated tiny models: folder and single file hold the same tensors") {
  for (const std::string preset : {"tiny-sd15-inpaint", "tiny-sd2-inpaint", "tiny-sd15", "tiny-sdxl-inpaint", "tiny-sdxl"}) {
    CAPTURE(preset);
    const fs::path folder = tiny_model(preset, false);
    if (folder.empty()) return;
    const fs::path single = tiny_model(preset, true);
    const ModelSource a = ModelSource::open(folder), b = ModelSource::open(single);
    CHECK(b.single_file);
    CHECK(a.family == b.family);
    CHECK(a.unet_in_channels() == b.unet_in_channels());
    CHECK(a.unet_in_channels() == (preset.find("inpaint") != std::string::npos ? 9 : 4));
    CHECK(inspect_model(a).ok());
    const ModelReport rb = inspect_model(b);
    CHECK(rb.ok());
    CHECK(a.components.size() == b.components.size());
    for (const std::string& comp : component_names(a.family)) {
      CAPTURE(comp);
      const auto& ta = a.component(comp).tensors;
      const auto& tb = b.component(comp).tensors;
      REQUIRE(ta.size() == tb.size());
      CHECK(part(rb, comp).unexpected.empty());
      for (const auto& [name, ref] : ta) {
        CAPTURE(name);
        REQUIRE(tb.count(name));
        CHECK(view_of(ref).equal(view_of(tb.at(name))));
      }
    }
    // The SD 2 single file carries OpenCLIP's unused last layer and projection: ignored.
    if (preset == "tiny-sd2-inpaint") CHECK(b.ignored.size() >= 13);
  }
}

TEST_CASE("full-size single-file key map covers every tensor (sparse file, nothing loaded)") {
  const fs::path dir = test::temp_dir("sparse");
  struct Expect {
    const char* preset;
    int64_t unet, vae, text, text_2;
    Family family;
  } expects[] = {{"sd15-inpaint", 859535364, 83653863, 123060480, 0, Family::SD1},
                 {"sd2-inpaint", 865925124, 83653863, 340387840, 0, Family::SD2},
                 {"sdxl-inpaint", 2567478084, 83653863, 123060480, 694659840, Family::SDXL}};
  for (const auto& e : expects) {
    CAPTURE(e.preset);
    const ModelSource m = ModelSource::open(sparse_checkpoint(dir, e.preset));
    CHECK(m.family == e.family);
    CHECK(m.inpainting());
    const ModelReport r = inspect_model(m);
    CAPTURE(r.tokenizer_error);
    CHECK(r.ok());
    CHECK(part(r, "unet").parameters == e.unet);
    CHECK(part(r, "vae").parameters == e.vae);
    CHECK(part(r, "text_encoder").parameters == e.text);
    if (e.text_2) CHECK(part(r, "text_encoder_2").parameters == e.text_2);
    for (const auto& c : r.components) CHECK(c.unexpected.empty());
    // The configs derived from shapes equal the real ones (no metadata in this file).
    const ModelPreset p = model_preset(e.preset);  // a copy: GCC 14 flags a reference with a temporary argument
    CHECK(m.component("unet").config["block_out_channels"] == p.unet["block_out_channels"]);
    CHECK(m.component("unet").config["attention_head_dim"] == p.unet["attention_head_dim"]);
    CHECK(m.component("unet").config["use_linear_projection"] == p.unet["use_linear_projection"]);
    CHECK(m.component("text_encoder").config["num_hidden_layers"] == p.text_encoder["num_hidden_layers"]);
    for (const char* key : {"down_block_types", "up_block_types", "transformer_layers_per_block",
                            "addition_embed_type", "addition_time_embed_dim", "projection_class_embeddings_input_dim"})
      CHECK(m.component("unet").config.value(key, nlohmann::json()) == p.unet.value(key, nlohmann::json()));
    CHECK(m.component("vae").config["scaling_factor"] == p.vae["scaling_factor"]);
    if (e.text_2)
      for (const char* key : {"architectures", "num_hidden_layers", "hidden_size", "num_attention_heads", "hidden_act", "projection_dim"})
        CHECK(m.component("text_encoder_2").config[key] == p.text_encoder_2[key]);
  }
}

TEST_CASE("single-file key names follow the original checkpoint layout") {
  const auto entries = single_file_entries("sd15-inpaint", DType::F16);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& e : entries) shapes[e.name] = e.shape;
  // Known names and shapes of the original SD 1.5 inpainting checkpoint.
  const std::map<std::string, std::vector<int64_t>> known = {
      {"model.diffusion_model.input_blocks.0.0.weight", {320, 9, 3, 3}},
      {"model.diffusion_model.input_blocks.3.0.op.weight", {320, 320, 3, 3}},
      {"model.diffusion_model.input_blocks.4.0.skip_connection.weight", {640, 320, 1, 1}},
      {"model.diffusion_model.middle_block.1.proj_in.weight", {1280, 1280, 1, 1}},
      {"model.diffusion_model.output_blocks.2.1.conv.weight", {1280, 1280, 3, 3}},
      {"model.diffusion_model.output_blocks.5.2.conv.weight", {1280, 1280, 3, 3}},
      {"model.diffusion_model.output_blocks.11.1.transformer_blocks.0.ff.net.0.proj.weight", {2560, 320}},
      {"model.diffusion_model.time_embed.2.weight", {1280, 1280}},
      {"model.diffusion_model.out.2.weight", {4, 320, 3, 3}},
      {"first_stage_model.encoder.mid.attn_1.q.weight", {512, 512, 1, 1}},
      {"first_stage_model.decoder.up.0.block.0.nin_shortcut.weight", {128, 256, 1, 1}},
      {"first_stage_model.decoder.up.3.upsample.conv.weight", {512, 512, 3, 3}},
      {"first_stage_model.encoder.down.0.downsample.conv.weight", {128, 128, 3, 3}},
      {"cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight", {768, 3072}},
  };
  for (const auto& [name, shape] : known) {
    CAPTURE(name);
    REQUIRE(shapes.count(name));
    CHECK(shapes[name] == shape);
  }
  CHECK(entries.size() == 686 + 248 + 196 + 2);  // + position_ids and alphas_cumprod
  const auto sd2 = single_file_entries("sd2-inpaint", DType::F16);
  std::set<std::string> names;
  for (const auto& e : sd2) names.insert(e.name);
  CHECK(names.count("cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight"));
  CHECK(names.count("cond_stage_model.model.positional_embedding"));
}

TEST_CASE("bad models give one clear error each") {
  const fs::path d = test::temp_dir("bad-models");
  auto error_of = [](const fs::path& p) -> std::string {
    try {
      inspect_model(ModelSource::open(p));
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  fs::create_directories(d / "empty");
  CHECK(error_of(d / "empty").find("empty folder") != std::string::npos);
  CHECK(error_of(d / "nothing-here").find("no such file") != std::string::npos);
  std::ofstream(d / "model.ckpt") << "PK\3\4 pickle";
  CHECK(error_of(d / "model.ckpt").find("pickle") != std::string::npos);
  std::ofstream(d / "renamed.safetensors") << "PK\3\4 a zip archive renamed";
  CHECK(error_of(d / "renamed.safetensors").find("pickle") != std::string::npos);

  const fs::path folder = tiny_model("tiny-sd15-inpaint", false, 11);
  if (folder.empty()) return;
  // Missing tokenizer.
  fs::copy(folder, d / "no-tok", fs::copy_options::recursive);
  fs::remove_all(d / "no-tok/tokenizer");
  CHECK(error_of(d / "no-tok").find("missing tokenizer") != std::string::npos);
  // Truncated weights.
  fs::copy(folder, d / "trunc", fs::copy_options::recursive);
  const fs::path unet = d / "trunc/unet/diffusion_pytorch_model.safetensors";
  fs::resize_file(unet, fs::file_size(unet) / 2);
  std::string err = error_of(d / "trunc");
  CHECK(err.find(unet.string()) != std::string::npos);
  CHECK(err.find("truncated") != std::string::npos);
  // Wrong shape: a config that does not match the weights.
  fs::copy(folder, d / "shape", fs::copy_options::recursive);
  {
    std::ifstream in(d / "shape/unet/config.json");
    nlohmann::json c = nlohmann::json::parse(in);
    c["cross_attention_dim"] = 32;
    std::ofstream(d / "shape/unet/config.json") << c.dump();
  }
  const ModelReport r = inspect_model(ModelSource::open(d / "shape"));
  CHECK_FALSE(r.ok());
  CHECK(part(r, "unet").wrong_shape.size() > 0);
  CHECK(part(r, "unet").wrong_shape[0].find("expected") != std::string::npos);
  // Missing tensor: a single file without one UNet tensor.
  const fs::path single = tiny_model("tiny-sd15-inpaint", true, 11);
  {
    auto file = SafetensorsFile::open(single);
    std::vector<SafetensorsWriter::Entry> entries;
    std::map<std::string, std::string> meta = file->metadata();
    for (const auto& t : file->tensors())
      if (t.name != "model.diffusion_model.out.2.bias") entries.push_back({t.name, t.dtype, t.shape});
    fs::create_directories(d / "missing");
    SafetensorsWriter w(d / "missing/model.safetensors", entries, meta);
    for (const auto& e : entries) {
      const TensorInfo* t = file->find(e.name);
      w.write_next(e.name, file->data(*t), t->nbytes());
    }
    w.finish();
    fs::copy(single.parent_path() / "tokenizer", d / "missing/tokenizer", fs::copy_options::recursive);
  }
  const ModelReport rm = inspect_model(ModelSource::open(d / "missing/model.safetensors"));
  CHECK_FALSE(rm.ok());
  REQUIRE(part(rm, "unet").missing.size() == 1);
  CHECK(part(rm, "unet").missing[0].find("conv_out.bias") != std::string::npos);
  // A single file with no tokenizer anywhere else: the one shipped with the program
  // (share/clip/, found from the build folder here), unless one is given.
  fs::create_directories(d / "lonely");
  fs::copy(single, d / "lonely/model.safetensors");
  setenv("XDG_DATA_HOME", (d / "no-data").c_str(), 1);
  const ModelSource lonely = ModelSource::open(d / "lonely/model.safetensors");
  CHECK(lonely.tokenizer_dir == fs::path(INPAINT_SOURCE_DIR) / "share/clip");
  CHECK(inspect_model(lonely).ok());
  fs::copy(fs::path(INPAINT_SOURCE_DIR) / "share/clip", d / "own-tokenizer", fs::copy_options::recursive);
  setenv("INPAINT_TOKENIZER", (d / "own-tokenizer").c_str(), 1);
  CHECK(ModelSource::open(d / "lonely/model.safetensors").tokenizer_dir == d / "own-tokenizer");
  unsetenv("INPAINT_TOKENIZER");
  unsetenv("XDG_DATA_HOME");
}

TEST_CASE("fp16 variants are picked when asked or when they are the only weights") {
  const fs::path folder = tiny_model("tiny-sd15-inpaint", false, 5);
  if (folder.empty()) return;
  const fs::path d = test::temp_dir("variants");
  fs::copy(folder, d / "m", fs::copy_options::recursive);
  fs::copy(d / "m/unet/diffusion_pytorch_model.safetensors",
           d / "m/unet/diffusion_pytorch_model.fp16.safetensors");
  OpenOptions fp16;
  fp16.prefer_fp16 = true;
  CHECK(ModelSource::open(d / "m").component("unet").files[0].find(".fp16.") == std::string::npos);
  CHECK(ModelSource::open(d / "m", fp16).component("unet").files[0].find(".fp16.") != std::string::npos);
  fs::remove(d / "m/unet/diffusion_pytorch_model.safetensors");
  CHECK(ModelSource::open(d / "m").component("unet").files[0].find(".fp16.") != std::string::npos);
}
