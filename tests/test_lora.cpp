// LoRAs on the tiny SD 1.5 model: each format gives W + scale * alpha/rank * up @ down,
// checked against sums written out by hand, both as kept (low-rank factors) and as the
// networks and `convert --lora` use it; bad files are refused with the reason.
#include <fstream>

#include "engine/error.h"
#include "engine/lora.h"
#include "engine/lora_cache.h"
#include "engine/networks.h"
#include "engine/packed_cache.h"
#include "models/kernels/packed_conv.h"
#include "models/layers.h"
#include "tests/parity_support.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;

namespace {

const std::string kToQ = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
const std::string kConv = "down_blocks.0.resnets.0.conv1";
const std::string kFeedForward = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj";
const std::string kTextQ = "text_model.encoder.layers.0.self_attn.q_proj";

struct Layer {
  std::string component, module;
  std::vector<int64_t> shape;  // of the weight
};

// Rank-2 factors with small integer-ish values, so the expected sums are exact.
at::Tensor factor(std::vector<int64_t> shape, double seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return (at::arange(n, at::kFloat).fmod(7.0) - 3.0).mul(0.01 * seed).reshape(shape);
}

struct Lora {
  std::map<std::string, at::Tensor> tensors;
  void write(const fs::path& path) const {
    std::vector<SafetensorsWriter::Entry> entries;
    for (const auto& [name, t] : tensors) entries.push_back({name, DType::F32, t.sizes().vec()});
    SafetensorsWriter w(path, entries);
    for (const auto& [name, t] : tensors) w.write_next(name, t.contiguous().data_ptr(), t.nbytes());
    w.finish();
  }
};

std::vector<Layer> layers(const ModelSource& m) {
  std::vector<Layer> out;
  for (const auto& [component, module] : {std::pair<std::string, std::string>{"unet", kToQ}, {"unet", kConv},
                                          {"unet", kFeedForward},
                                          {"text_encoder", kTextQ}}) {
    const TensorRef& ref = m.component(component).tensors.at(module + ".weight");
    out.push_back({component, module, ref.shape});
  }
  return out;
}

// down [2, in, k, k] and up [out, 2, 1, 1] (conv) or [2, in] and [out, 2] (linear).
std::pair<at::Tensor, at::Tensor> factors_for(const Layer& l) {
  std::vector<int64_t> down = l.shape, up = {l.shape[0], 2};
  down[0] = 2;
  if (l.shape.size() == 4) up.insert(up.end(), {1, 1});
  return {factor(down, 1.0), factor(up, 2.0)};
}

// The merged weight as a sum written out: W[o][i] + s * alpha/r * sum_r up[o][r] down[r][i].
at::Tensor by_hand(const at::Tensor& w, const at::Tensor& down, const at::Tensor& up, double s, double alpha) {
  const int64_t out = w.size(0), in = w.numel() / out;
  const at::Tensor w2 = w.reshape({out, in}).to(at::kFloat).contiguous(), d = down.reshape({2, in}).contiguous(),
                   u = up.reshape({out, 2}).contiguous();
  at::Tensor r = w2.clone();
  auto ra = r.accessor<float, 2>();
  auto da = d.accessor<float, 2>();
  auto ua = u.accessor<float, 2>();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) ra[o][i] += float(s * alpha / 2.0) * (ua[o][0] * da[0][i] + ua[o][1] * da[1][i]);
  return r.reshape(w.sizes());
}

// kohya's name for a layer's module; SDXL's files number the text encoders (lora_te1_, lora_te2_).
std::string kohya_name(const Layer& l, bool two_encoders = false) {
  std::string m = l.module;
  for (char& c : m)
    if (c == '.') c = '_';
  if (l.component == "unet") return "lora_unet_" + m;
  if (!two_encoders) return "lora_te_" + m;
  return (l.component == "text_encoder" ? "lora_te1_" : "lora_te2_") + m;
}

// The weight the networks use: the stored one plus the kept factors.
at::Tensor adapted(const ModelSource& m, const std::string& component, const std::string& weight) {
  const at::Tensor w = view_of(m.component(component).tensors.at(weight)).to(at::kFloat);
  const LoraFactors& f = m.component(component).loras.at(weight);
  return w + at::mm(f.up, f.down).view(w.sizes());
}

// Each layer of `m` adapted as written out by hand from `original` and the layer's factors.
void check_merged(const ModelSource& original, const ModelSource& m, const std::vector<Layer>& ls, double scale,
                  double alpha) {
  for (const Layer& l : ls) {
    CAPTURE(l.component);
    CAPTURE(l.module);
    const auto [down, up] = factors_for(l);
    const at::Tensor w = view_of(original.component(l.component).tensors.at(l.module + ".weight"));
    CHECK(test::max_abs_diff(adapted(m, l.component, l.module + ".weight"), by_hand(w, down, up, scale, alpha)) < 1e-6);
  }
}

}  // namespace

TEST_CASE("LoRA: kohya, diffusers/PEFT and attention-processor files merge to W + s*alpha/r*up@down") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("lora");
  const ModelSource original = ModelSource::open(model_dir);
  const auto ls = layers(original);

  Lora kohya, peft, processor;
  for (const Layer& l : ls) {
    const auto [down, up] = factors_for(l);
    kohya.tensors[kohya_name(l) + ".lora_down.weight"] = down;
    kohya.tensors[kohya_name(l) + ".lora_up.weight"] = up;
    kohya.tensors[kohya_name(l) + ".alpha"] = at::tensor({1.0f}).reshape({});
    const std::string prefix = l.component + "." + l.module;
    peft.tensors[prefix + ".lora_A.weight"] = down;
    peft.tensors[prefix + ".lora_B.weight"] = up;
  }
  const auto [qd, qu] = factors_for(ls[0]);
  processor.tensors["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight"] = qd;
  processor.tensors["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight"] = qu;
  kohya.write(d / "kohya.safetensors");
  peft.write(d / "peft.safetensors");
  processor.write(d / "processor.safetensors");

  SUBCASE("kohya, scale 0.5, alpha 1 of rank 2") {
    ModelSource m = ModelSource::open(model_dir);
    const LoraReport r = apply_lora(m, parse_lora_spec((d / "kohya.safetensors").string() + ":0.5"));
    CHECK(r.layers == 4);
    CHECK(r.ignored.empty());
    check_merged(original, m, ls, 0.5, 1.0);
    CHECK(m.components.at("unet").loras.size() == 3);  // nothing else changed
  }
  SUBCASE("diffusers/PEFT (no alpha: alpha = rank), and the processor layout, then a second LoRA on top") {
    ModelSource m = ModelSource::open(model_dir);
    CHECK(apply_lora(m, {d / "peft.safetensors", 1.0}).layers == 4);
    const at::Tensor w = view_of(original.component("unet").tensors.at(kToQ + ".weight"));
    const at::Tensor once = by_hand(w, qd, qu, 1.0, 2.0);
    CHECK(test::max_abs_diff(adapted(m, "unet", kToQ + ".weight"), once) < 1e-6);
    CHECK(apply_lora(m, {d / "processor.safetensors", 1.0}).layers == 1);
    CHECK(test::max_abs_diff(adapted(m, "unet", kToQ + ".weight"), by_hand(once, qd, qu, 1.0, 2.0)) < 1e-6);
  }
  SUBCASE("the networks use the adapted weights: scale 0 changes nothing, and resident, streamed and "
          "convert --lora give the same output") {
    const auto un = test::fixture_file(test::shared("fixtures/A/tiny-sd15-inpaint") / "unet.safetensors");
    const at::Tensor x = un.get("sample0"), ctx = un.get("encoder_hidden_states");
    const at::Tensor base = load_unet(original)->forward({}, x, 981, ctx);
    ModelSource zero = ModelSource::open(model_dir), one = ModelSource::open(model_dir);
    apply_lora(zero, {d / "kohya.safetensors", 0.0});
    apply_lora(one, {d / "kohya.safetensors", 1.0});
    {
      // Exactly: both with the weights as stored (a merged LoRA keeps a layer off the
      // packed-weight kernel, which rounds differently).
      Compute as_stored;
      as_stored.policy.packed_convolutions = false;
      const at::Tensor base_as_stored = load_unet(original)->forward(as_stored, x, 981, ctx);
      CHECK(test::max_abs_diff(load_unet(zero)->forward(as_stored, x, 981, ctx), base_as_stored) == 0.0);
    }
    const at::Tensor adapted_out = load_unet(one)->forward({}, x, 981, ctx);
    CHECK(test::max_abs_diff(adapted_out, base) > 1e-4);
    Compute streamed;
    streamed.policy.stream_weights = true;
    streamed.policy.weight_slot_floats = 4096;  // output-channel chunks of the factors too
    const at::Tensor streamed_out = load_unet(one)->forward(streamed, x, 981, ctx);
    CHECK(test::max_abs_diff(streamed_out, adapted_out) < 1e-5);
    // Each layer merges up·down into its weight or applies the factors to its input,
    // whichever is cheaper; either way everywhere gives the same output.
    for (const auto mode : {ComputePolicy::kLoraMerge, ComputePolicy::kLoraOnInput}) {
      Compute forced;
      forced.policy.lora_mode = mode;
      const at::Tensor forced_out = load_unet(one)->forward(forced, x, 981, ctx);
      CHECK(test::max_abs_diff(forced_out, adapted_out) < 1e-5);
    }
    std::string out;
    REQUIRE_MESSAGE(test::run(test::inpaint_exe() + " convert " + model_dir.string() + " --lora " +
                              (d / "kohya.safetensors").string() + " --out " + (d / "baked").string(), &out) == 0, out);
    const at::Tensor baked = load_unet(ModelSource::open(d / "baked"))->forward({}, x, 981, ctx);
    CHECK(test::max_abs_diff(baked, adapted_out) < 1e-5);
  }
}

TEST_CASE("LoRA on SDXL: kohya's lora_te1_/lora_te2_ and diffusers' text_encoder_2 names reach both text encoders") {
  REQUIRE_SHARED(model_dir, "fixtures/A-sdxl/models/tiny-sdxl-inpaint");
  const fs::path d = test::temp_dir("lora-sdxl");
  const ModelSource original = ModelSource::open(model_dir);
  std::vector<Layer> ls;
  for (const auto& [component, module] : {std::pair<std::string, std::string>{"unet", "down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k"},
                                          {"text_encoder", kTextQ}, {"text_encoder_2", kTextQ}})
    ls.push_back({component, module, original.component(component).tensors.at(module + ".weight").shape});
  Lora kohya, peft;
  for (const Layer& l : ls) {
    const auto [down, up] = factors_for(l);
    const std::string name = kohya_name(l, /*two_encoders=*/true);
    kohya.tensors[name + ".lora_down.weight"] = down;
    kohya.tensors[name + ".lora_up.weight"] = up;
    peft.tensors[l.component + "." + l.module + ".lora_A.weight"] = down;
    peft.tensors[l.component + "." + l.module + ".lora_B.weight"] = up;
  }
  kohya.write(d / "kohya.safetensors");
  peft.write(d / "peft.safetensors");
  for (const char* file : {"kohya.safetensors", "peft.safetensors"}) {
    CAPTURE(file);
    ModelSource m = ModelSource::open(model_dir);
    const LoraReport r = apply_lora(m, {d / file, 1.0});
    CHECK(r.layers == 3);
    CHECK(r.ignored.empty());
    check_merged(original, m, ls, 1.0, 2.0);  // no alpha: alpha = rank
  }
}

TEST_CASE("LoRA: files that do not fit are refused with the reason") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("lora-bad");
  ModelSource m = ModelSource::open(model_dir);
  Lora wrong;  // rank 2, but for a layer twice as wide
  const auto& shape = m.component("unet").tensors.at(kToQ + ".weight").shape;
  wrong.tensors["lora_unet_" + std::string("down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q") +
                ".lora_down.weight"] = factor({2, shape[1] * 2}, 1);
  wrong.tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight"] =
      factor({shape[0], 2}, 1);
  wrong.write(d / "wrong.safetensors");
  Lora none;
  none.tensors["lora_unet_input_blocks_99_to_q.lora_down.weight"] = factor({2, 4}, 1);
  none.tensors["lora_unet_input_blocks_99_to_q.lora_up.weight"] = factor({4, 2}, 1);
  none.write(d / "none.safetensors");
  auto message = [&](const fs::path& f) {
    try {
      apply_lora(m, {f, 1.0});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message(d / "wrong.safetensors").find("do not fit") != std::string::npos);
  CHECK(message(d / "none.safetensors").find("none of its 1 LoRA layers") != std::string::npos);
  CHECK(message(d / "missing.safetensors").find("missing.safetensors") != std::string::npos);
  CHECK_THROWS_AS(parse_lora_spec("x.safetensors:abc"), Error);
}

TEST_CASE("LoRA cache: merged once, used on the next run with the same output, refused when damaged, "
          "pruned to the last used") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("lora-cache");
  setenv("INPAINT_CACHE", (d / "cache").c_str(), 1);
  const ModelSource original = ModelSource::open(model_dir);
  Lora kohya;
  for (const Layer& l : layers(original)) {
    const auto [down, up] = factors_for(l);
    kohya.tensors[kohya_name(l) + ".lora_down.weight"] = down;
    kohya.tensors[kohya_name(l) + ".lora_up.weight"] = up;
  }
  kohya.write(d / "kohya.safetensors");
  const std::vector<LoraSpec> specs = {{d / "kohya.safetensors", 0.5}};
  auto adapted_model = [&] {
    ModelSource m = ModelSource::open(model_dir);
    for (const LoraSpec& s : specs) apply_lora(m, s);
    return m;
  };
  const auto un = test::fixture_file(test::shared("fixtures/A/tiny-sd15-inpaint") / "unet.safetensors");
  const at::Tensor x = un.get("sample0"), ctx = un.get("encoder_hidden_states");

  ModelSource first = adapted_model();
  CHECK_FALSE(use_lora_cache(first, specs));
  const at::Tensor on_the_fly = load_unet(first)->forward({}, x, 981, ctx);
  REQUIRE(write_lora_cache(first, specs, {}));
  const fs::path entry = lora_cache_entry(first, specs);
  CHECK(entry.parent_path().parent_path() == d / "cache");
  CHECK(fs::exists(entry / "unet.safetensors"));
  CHECK(fs::exists(entry / "text_encoder.safetensors"));

  ModelSource second = adapted_model();
  REQUIRE(use_lora_cache(second, specs));
  CHECK(second.components.at("unet").loras.empty());
  CHECK(second.components.at("text_encoder").loras.empty());
  const Layer conv = layers(original)[1];
  const auto [down, up] = factors_for(conv);
  const at::Tensor w = view_of(original.component("unet").tensors.at(conv.module + ".weight"));
  CHECK(test::max_abs_diff(view_of(second.component("unet").tensors.at(conv.module + ".weight")),
                           by_hand(w, down, up, 0.5, 2.0)) < 1e-6);
  CHECK(test::max_abs_diff(load_unet(second)->forward({}, x, 981, ctx), on_the_fly) < 1e-5);
  // The same from the bare model, the LoRA never read (as `run` does when the entry is there).
  ModelSource bare = ModelSource::open(model_dir);
  REQUIRE(use_lora_cache(bare, specs));
  CHECK(bare.component("unet").tensors.at(conv.module + ".weight").file->label() ==
        (entry / "unet.safetensors").string());
  // The model named by a relative path finds the same entry.
  const fs::path cwd = fs::current_path();
  fs::current_path(fs::path(model_dir).parent_path());
  ModelSource relative = ModelSource::open(fs::path(model_dir).filename());
  const fs::path relative_entry = lora_cache_entry(relative, specs);
  fs::current_path(cwd);
  CHECK(relative.path.is_relative());
  CHECK(relative_entry == entry);
  CHECK(test::max_abs_diff(load_unet(bare)->forward({}, x, 981, ctx), on_the_fly) < 1e-5);

  // Another scale is another entry; a damaged entry is not used and changes nothing.
  CHECK_FALSE(use_lora_cache(second, {{d / "kohya.safetensors", 0.25}}));
  fs::resize_file(entry / "unet.safetensors", fs::file_size(entry / "unet.safetensors") / 2);
  ModelSource third = adapted_model();
  CHECK_FALSE(use_lora_cache(third, specs));
  CHECK(third.components.at("unet").loras.size() == 3);
  CHECK_FALSE(fs::exists(entry));  // deleted, so that the next run writes a sound one

  // One flipped byte in the merged weights (the file still parses), caught by the
  // checksum. In the text encoder's: at once, not used, deleted.
  auto flip_last_bytes = [&](const std::string& file) {
    std::fstream f(entry / file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  };
  REQUIRE(write_lora_cache(first, specs, {}));
  flip_last_bytes("text_encoder.safetensors");
  ModelSource fourth = adapted_model();
  CHECK_FALSE(use_lora_cache(fourth, specs));
  CHECK(fourth.components.at("unet").loras.size() == 3);
  CHECK_FALSE(fs::exists(entry));
  // In the UNet's: where a layer first reads it (engine/read_checks.h), since kept packed
  // weights usually replace it all. Loading reads none of it; the first evaluation fails
  // with the file's name, and the entry is gone for the next run.
  REQUIRE(write_lora_cache(first, specs, {}));
  flip_last_bytes("unet.safetensors");
  {
    ModelSource fifth = adapted_model();
    REQUIRE(use_lora_cache(fifth, specs));
    const auto unet = load_unet(fifth);
    CHECK(fs::exists(entry));
    const std::string said = (entry / "unet.safetensors").string() + ": damaged (checksum mismatch)";
    CHECK_THROWS_WITH_AS(unet->forward({}, x, 981, ctx), doctest::Contains(said.c_str()), Error);
    CHECK_FALSE(fs::exists(entry));
    CHECK_THROWS_AS(unet->forward({}, x, 981, ctx), Error);  // and at every later read
  }
  ModelSource sixth = adapted_model();
  CHECK_FALSE(use_lora_cache(sixth, specs));
  // Kept packed weights in place of every merged layer: the damaged bytes are never read,
  // and the output is the sound entry's (the damage left the file's time as it was, as
  // bit rot does: the kept file is named after it).
  {
    REQUIRE(write_lora_cache(first, specs, {}));
    ModelSource sound = adapted_model();
    REQUIRE(use_lora_cache(sound, specs));
    const Compute packing;
    PackedSlots slots;
    const at::Tensor sound_out = load_unet(sound, &slots)->forward(packing, x, 981, ctx);
    const fs::path kept = packed_cache_file(d / "packed", sound.component("unet"), packing, unet_shapes(1, 8, 8));
    REQUIRE(write_packed_cache(kept, slots, packing));
    const auto written = fs::last_write_time(entry / "unet.safetensors");
    flip_last_bytes("unet.safetensors");
    fs::last_write_time(entry / "unet.safetensors", written);
    ModelSource damaged = adapted_model();
    REQUIRE(use_lora_cache(damaged, specs));
    PackedSlots restored;
    const auto unet = load_unet(damaged, &restored);
    REQUIRE(packed_cache_file(d / "packed", damaged.component("unet"), packing, unet_shapes(1, 8, 8)) == kept);
    CHECK(use_packed_cache(kept, restored, packing) > 0);
    for (const Layer& l : layers(original)) {  // the merged ones: all restored
      at::Tensor data;
      std::string layout;
      if (l.component == "unet") CHECK(packed_contents(*restored.at(l.module + ".weight"), data, layout));
    }
    CHECK(test::max_abs_diff(unet->forward(packing, x, 981, ctx), sound_out) == 0.0);
    CHECK(fs::exists(entry));
  }

  // Two entries are kept: the oldest goes.
  for (double scale : {0.25, 0.125}) {
    ModelSource m = ModelSource::open(model_dir);
    apply_lora(m, {d / "kohya.safetensors", scale});
    REQUIRE(write_lora_cache(m, {{d / "kohya.safetensors", scale}}, {}));
  }
  CHECK_FALSE(fs::exists(entry));
  CHECK(std::distance(fs::directory_iterator(entry.parent_path()), fs::directory_iterator()) == 2);

  // A cache folder that cannot be made: nothing written, the run goes on.
  std::ofstream(d / "a-file") << "x";
  setenv("INPAINT_CACHE", (d / "a-file" / "cache").c_str(), 1);
  std::string said;
  CHECK_FALSE(write_lora_cache(first, specs, [&](const std::string& m) { said = m; }));
  CHECK(said.find("cannot create") != std::string::npos);
  unsetenv("INPAINT_CACHE");
}
