// Parity with the reference implementation, driven entirely by the fixture sets'
// index.json (every set under ../shared/fixtures/, or $INPAINT_FIXTURES for one): every
// model, every section, every case. A section this test does not know is a failure, and
// a failure in one section does not stop the others.
#include <algorithm>
#include <fstream>
#include <optional>

#include "engine/error.h"
#include "engine/json_file.h"
#include "engine/model_source.h"
#include "engine/networks.h"
#include "engine/pipeline.h"
#include "engine/schedulers/scheduler.h"
#include "models/layers.h"
#include "models/kernels/cpu.h"
#include "models/kernels/packed_conv.h"
#include <ATen/CPUGeneratorImpl.h>
#include "tests/parity_support.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;
using nlohmann::json;

namespace {

constexpr double kNetworkTolerance = 1e-4;    // max abs, as the fixtures' README asks
constexpr double kSchedulerTolerance = 1e-5;  // relative to max(1, |reference|)
constexpr double kPipelineTolerance = 2e-3;   // max abs on images in [0, 1]

json read_json(const fs::path& p) { return read_json_file(p); }

// The tokenizer a section names (its component: tokenizer or SDXL's tokenizer_2).
ClipTokenizer section_tokenizer(const ModelSource& model, const std::string& component) {
  REQUIRE_MESSAGE((component == "tokenizer" || component == "tokenizer_2"), "unknown tokenizer '" << component << "'");
  return load_tokenizer(model, component == "tokenizer_2");
}

void check_tokenizer(const ModelSource& model, const fs::path& dir, const json& spec) {
  const ClipTokenizer tok = section_tokenizer(model, spec.value("component", "tokenizer"));
  const json prompts = read_json(dir / spec["prompts_file"].get<std::string>());
  const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
  const at::Tensor ids = ref.get("input_ids"), lengths = ref.get("untruncated_length");
  REQUIRE(ids.size(0) == static_cast<int64_t>(prompts.size()));
  int wrong = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string prompt = prompts[i].get<std::string>();
    const auto got = tok.encode_padded(prompt);
    const at::Tensor expect = ids[i];
    bool same = static_cast<int64_t>(got.ids.size()) == expect.size(0);
    for (size_t k = 0; same && k < got.ids.size(); ++k) same = got.ids[k] == expect[k].item<int64_t>();
    same = same && static_cast<int64_t>(got.untruncated_length) == lengths[i].item<int64_t>();
    if (!same && wrong++ < 5) {
      std::string g, e;
      for (size_t k = 0; k < got.ids.size(); ++k) g += std::to_string(got.ids[k]) + " ";
      for (int64_t k = 0; k < expect.size(0); ++k) e += std::to_string(expect[k].item<int64_t>()) + " ";
      FAIL_CHECK("prompt " << i << " " << json(prompt).dump() << "\n  got      " << g
                           << "(length " << got.untruncated_length << ")\n  expected " << e
                           << "(length " << lengths[i].item<int64_t>() << ")");
    }
  }
  CHECK_MESSAGE(wrong == 0, wrong << " of " << prompts.size() << " prompts differ");
  MESSAGE(spec.value("component", "tokenizer") << ": " << prompts.size() - wrong << "/" << prompts.size() << " prompts exact");
}

// A text encoder's outputs under the names the fixtures give them.
std::map<std::string, at::Tensor> by_fixture_name(const ClipTextOutput& out) {
  return {{"last_hidden_state", out.last_hidden_state},
          {"penultimate_hidden_state", out.penultimate_hidden_state},
          {"pooler_output", out.pooled},
          {"text_embeds", out.pooled}};
}

// last_hidden_state always; the penultimate layer's states and the pooled output (SDXL
// sets) where the set has them.
void check_text_encoder(const Compute& cp, const ModelSource& model, const fs::path& dir, const json& spec) {
  const std::string component = spec.value("component", "text_encoder");
  const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
  const at::Tensor ids = ref.get("input_ids");
  // Our tokenizer gives the same ids for the listed prompts.
  const ClipTokenizer tok = section_tokenizer(model, spec.value("tokenizer", "tokenizer"));
  for (size_t i = 0; i < spec["prompts"].size(); ++i) {
    const auto got = tok.encode_padded(spec["prompts"][i].get<std::string>()).ids;
    CHECK(at::tensor(got).equal(ids[i]));
  }
  const std::map<std::string, at::Tensor> outputs = by_fixture_name(load_text_encoder(model, component)->encode(cp, ids));
  for (const auto& [key, description] : spec["tensors"].items()) {
    if (key == "input_ids") continue;
    CAPTURE(key);
    auto it = outputs.find(key);
    if (it == outputs.end()) {
      FAIL_CHECK(component << ": output '" << key << "' is not covered by the parity test");
      continue;
    }
    const double err = test::max_abs_diff(it->second, ref.get(key));
    MESSAGE(component << " " << key << ": max abs error " << err);
    CHECK(err <= kNetworkTolerance);
  }
}

void check_unet(const Compute& cp, const ModelSource& model, const fs::path& dir, const json& spec) {
  const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
  const at::Tensor context = ref.get("encoder_hidden_states");
  const auto unet = load_unet(model);
  for (const json& c : spec["cases"]) {
    CAPTURE(c.dump());
    const at::Tensor sample = ref.get(c["sample"].get<std::string>());
    AddedConditions added;  // SDXL sets: the pooled embedding and the case's size conditions
    if (c.contains("time_ids")) {
      added.text_embeds = ref.get("text_embeds").expand({sample.size(0), -1});
      added.time_ids = ref.get(c["time_ids"].get<std::string>()).expand({sample.size(0), -1});
    }
    const at::Tensor out = unet->forward(cp, sample, c["timestep"].get<double>(),
                                         context.expand({sample.size(0), -1, -1}), added);
    const double err = test::max_abs_diff(out, ref.get(c["out"].get<std::string>()));
    MESSAGE("unet " << c["out"].get<std::string>() << ": max abs error " << err);
    CHECK(err <= kNetworkTolerance);
  }
}

void check_vae(const Compute& cp, const ModelSource& model, const fs::path& dir, const json& spec) {
  const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
  const auto vae = load_vae(model);
  for (const json& c : spec["cases"]) {
    CAPTURE(c.dump());
    const at::Tensor input = ref.get(c["input"].get<std::string>());
    const std::string kind = c["kind"].get<std::string>();
    if (kind == "encode") {
      const LatentDistribution d = vae->encode(cp, input);
      const double e_mean = test::max_abs_diff(d.mean, ref.get(c["mean"].get<std::string>()));
      const double e_std = test::max_abs_diff(d.std, ref.get(c["std"].get<std::string>()));
      MESSAGE("vae encode " << c["input"].get<std::string>() << ": mean " << e_mean << ", std " << e_std);
      CHECK(e_mean <= kNetworkTolerance);
      CHECK(e_std <= kNetworkTolerance);
    } else if (kind == "decode") {
      const double err = test::max_abs_diff(vae->decode(cp, input), ref.get(c["out"].get<std::string>()));
      MESSAGE("vae decode " << c["input"].get<std::string>() << ": max abs error " << err);
      CHECK(err <= kNetworkTolerance);
    } else {
      FAIL_CHECK("unknown vae case kind '" << kind << "'");
    }
  }
}

double relative_error(const at::Tensor& got, const at::Tensor& expect) {
  const double scale = std::max(1.0, expect.abs().max().item<double>());
  return test::max_abs_diff(got, expect) / scale;
}

at::Tensor as_tensor(const std::vector<double>& v) { return at::tensor(v); }

void check_schedulers(const fs::path& dir, const json& spec) {
  const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
  for (const json& c : spec["cases"]) {
    const std::string label = c["cls"].get<std::string>() + " n=" + std::to_string(c["num_inference_steps"].get<int>());
    CAPTURE(label);
    auto sched = make_scheduler_by_class(c["cls"].get<std::string>(), c["config"]);
    sched->set_timesteps(c["num_inference_steps"].get<int64_t>());
    CHECK(std::abs(sched->init_noise_sigma() - c["init_noise_sigma"].get<double>()) <=
          kSchedulerTolerance * std::max(1.0, c["init_noise_sigma"].get<double>()));
    double worst = relative_error(as_tensor(sched->timesteps()), ref.get(c["timesteps"].get<std::string>()));
    CHECK_MESSAGE(worst <= kSchedulerTolerance, "timesteps");
    if (!c["sigmas"].is_null()) {
      const double e = relative_error(as_tensor(sched->sigmas()), ref.get(c["sigmas"].get<std::string>()));
      CHECK_MESSAGE(e <= kSchedulerTolerance, "sigmas");
      worst = std::max(worst, e);
    }
    at::Generator gen = at::detail::createCPUGenerator(0);  // torch.Generator().manual_seed(0)
    at::Tensor x = ref.get(c["sample"].get<std::string>());
    for (const json& s : c["steps"]) {
      const double t = s["timestep"].get<double>();
      const at::Tensor scaled = sched->scale_model_input(x, t);
      const Scheduler::Step step = sched->step(ref.get(s["model_output"].get<std::string>()), t, x, gen);
      for (const auto& [key, value] : s.items()) {
        if (key == "timestep" || key == "model_output") continue;
        CAPTURE(key);
        at::Tensor mine;
        if (key == "scaled_input") mine = scaled;
        else if (key == "prev_sample") mine = step.prev_sample;
        else if (key == "pred_original_sample" || key == "denoised") mine = step.pred_original_sample;
        else FAIL_CHECK("unknown step output '" << key << "'");
        if (!mine.defined()) continue;
        const double e = relative_error(mine, ref.get(value.get<std::string>()));
        CHECK(e <= kSchedulerTolerance);
        worst = std::max(worst, e);
      }
      x = step.prev_sample;
    }
    MESSAGE(label << ": worst relative error " << worst);
  }
}

struct LatentRecorder : Progress {
  std::vector<at::Tensor> steps;
  void latents(int, const at::Tensor& l) override { steps.push_back(l.clone()); }
};

uint64_t seed_of(const std::string& generator) {  // 'torch.Generator("cpu").manual_seed(42)'
  const size_t at = generator.find("manual_seed(");
  REQUIRE_MESSAGE(at != std::string::npos, "cannot read the seed from " << generator);
  return std::stoull(generator.substr(at + 12));
}

void check_pipeline(const Compute& cp, const ModelSource& model, const fs::path& dir, const json& spec,
                    const json& sections) {
  // The scheduler names of this set, mapped to diffusers classes by its scheduler cases.
  std::map<std::string, std::string> classes;
  if (sections.contains("schedulers"))
    for (const json& c : sections["schedulers"]["cases"]) classes[c["scheduler"]] = c["cls"];
  const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
  for (const json& c : spec["cases"]) {
    const std::string key = c["key"].get<std::string>();
    CAPTURE(key);
    // A case's own strength or negative prompt replaces the section's; a null negative
    // prompt is one not passed (SDXL: zeros for the unconditional inputs).
    GenerationOptions o;
    o.prompt = spec["prompt"].get<std::string>();
    const json& negative = c.contains("negative_prompt") ? c["negative_prompt"] : spec["negative_prompt"];
    o.negative_prompt_given = !negative.is_null();
    if (!negative.is_null()) o.negative_prompt = negative.get<std::string>();
    o.guidance = spec["guidance_scale"].get<double>();
    o.strength = c.value("strength", spec["strength"].get<double>());
    o.seed = seed_of(spec["generator"].get<std::string>());
    const std::string name = c["scheduler"].get<std::string>();
    REQUIRE_MESSAGE(classes.count(name), "scheduler '" << name << "' has no class in the set's schedulers section");
    o.scheduler = classes[name];
    o.steps = c["num_inference_steps"].get<int>();
    const int64_t h = c["height"].get<int64_t>(), w = c["width"].get<int64_t>();
    // The generator's draws, in the order the case lists (SD sets: initial noise, then the
    // masked image's latent noise): our CPU generator gives diffusers' draws.
    at::Generator gen = at::detail::createCPUGenerator(o.seed);
    const json order = c.value("draw_order", json{"initial_noise", "masked_image_latent_noise"});
    for (const json& draw : order) {
      CAPTURE(draw.get<std::string>());
      CHECK(test::max_abs_diff(at::randn({1, 4, h / 8, w / 8}, gen), ref.get(c[draw.get<std::string>()].get<std::string>())) == 0);
    }

    const at::Tensor image = ref.get(c["input_image"].get<std::string>()).to(at::kFloat).div(255.0)
                                 .permute({2, 0, 1}).unsqueeze(0) * 2 - 1;
    const at::Tensor mask = ref.get(c["mask"].get<std::string>()).to(at::kFloat).div(255.0).unsqueeze(0).unsqueeze(0);
    LatentRecorder rec;
    const at::Tensor out = Pipeline(model, cp).generate(image, mask, o, rec);
    const at::Tensor expect_latents = ref.get(c["step_latents"].get<std::string>());
    REQUIRE(static_cast<int64_t>(rec.steps.size()) == expect_latents.size(0));
    double worst_latent = 0;
    for (size_t i = 0; i < rec.steps.size(); ++i)
      worst_latent = std::max(worst_latent, test::max_abs_diff(rec.steps[i][0], expect_latents[i]));
    const at::Tensor expect = ref.get(c["image"].get<std::string>());
    const double err = test::max_abs_diff(out.permute({0, 2, 3, 1}), expect);
    MESSAGE("pipeline " << key << ": image max abs error " << err << ", latents " << worst_latent);
    CHECK(err <= kPipelineTolerance);
  }
}

// The fixture sets to check: $INPAINT_FIXTURES, or every set under ../shared/fixtures.
std::vector<fs::path> fixture_sets() {
  if (const char* env = std::getenv("INPAINT_FIXTURES")) return {env};
  const fs::path root = test::shared("fixtures");
  std::vector<fs::path> sets;
  if (root.empty()) return sets;
  for (const auto& entry : fs::directory_iterator(root))
    if (fs::exists(entry.path() / "index.json")) sets.push_back(entry.path());
  std::sort(sets.begin(), sets.end());
  return sets;
}

void check_section(const Compute& cp, const ModelSource& model, const fs::path& dir, const std::string& section,
                   const json& spec, const json& sections) {
  const std::string component = spec.value("component", section);
  if (component == "tokenizer" || component == "tokenizer_2") check_tokenizer(model, dir, spec);
  else if (component == "text_encoder" || component == "text_encoder_2") check_text_encoder(cp, model, dir, spec);
  else if (section == "unet") check_unet(cp, model, dir, spec);
  else if (section == "vae") check_vae(cp, model, dir, spec);
  else if (section == "schedulers") check_schedulers(dir, spec);
  else if (section == "pipeline") check_pipeline(cp, model, dir, spec, sections);
  else FAIL_CHECK("section '" << section << "' is not covered by the parity test");
}

}  // namespace

TEST_CASE("parity: every case of every fixture set matches the reference") {
  const std::vector<fs::path> sets = fixture_sets();
  if (sets.empty()) return;  // test::shared said why
  // The default policy; oneDNN's Winograd kernel for every 3x3 convolution it runs (the
  // fixtures' small images reach the default's threshold in the VAE only); never.
  const int64_t by_default = ComputePolicy{}.winograd_from_pixels;
  for (const int64_t winograd_from : {by_default, int64_t(1), int64_t(0)}) {
    CAPTURE(winograd_from);
    MESSAGE("Winograd kernel from " << winograd_from << " pixels (0: never)");
    Compute cp;
    cp.policy.winograd_from_pixels = winograd_from;
    const int64_t winograd_before = winograd_convolutions();
    for (const fs::path& set : sets) {
      CAPTURE(set.string());
      MESSAGE("fixture set " << set.string());
      const json index = read_json(set / "index.json");
      REQUIRE(index.contains("models"));
      for (const auto& [name, sections] : index["models"].items()) {
        CAPTURE(name);
        std::optional<ModelSource> model;
        try {
          model = ModelSource::open(set / "models" / name);
        } catch (const Error& e) {
          FAIL_CHECK("cannot open " << name << ": " << e.what());
          continue;
        }
        for (const auto& [section, spec] : sections.items()) {
          CAPTURE(section);
          MESSAGE(name << " / " << section);
          // A failed REQUIRE or an error ends its section only (what failed is recorded).
          try {
            check_section(cp, *model, set / name, section, spec, sections);
          } catch (const std::exception& e) {
            FAIL_CHECK(name << " / " << section << ": " << e.what());
          } catch (...) {
            MESSAGE(name << " / " << section << ": stopped at a failed requirement");
          }
        }
      }
    }
    if (winograd_from == 0) CHECK(winograd_convolutions() == winograd_before);
    else CHECK((winograd_convolutions() > winograd_before) == winograd_available());  // none in oneDNN 3.x
  }
}

TEST_CASE("DDIM and PNDM refuse step counts whose first timestep is past the trained ones, naming the most that work") {
  // SD 1.5's scheduler_config: "leading" spacing, steps_offset 1, 1000 training steps.
  const json config = {{"num_train_timesteps", 1000}, {"timestep_spacing", "leading"}, {"steps_offset", 1},
                       {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"beta_end", 0.012}};
  for (const char* name : {"ddim", "pndm"}) {
    CAPTURE(name);
    auto sched = make_scheduler(name, config);
    try {
      sched->set_timesteps(1000);
      FAIL("1000 steps accepted");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("timestep 1000") != std::string::npos);
      CHECK(std::string(e.what()).find("at most 999 steps") != std::string::npos);
    }
    sched->set_timesteps(999);
    CHECK(sched->timesteps().front() == 999.0);
  }
  auto euler = make_scheduler("euler", config);  // interpolates its sigmas: clamps as diffusers does
  CHECK_NOTHROW(euler->set_timesteps(1000));
}

namespace {
double relative_l2(const at::Tensor& got, const at::Tensor& expected) {
  REQUIRE(got.sizes() == expected.sizes());
  return ((got - expected).norm() / expected.norm()).item<double>();
}
}  // namespace

// bf16 (--precision bf16): convolutions and linear layers multiply bf16 inputs and weights
// (8 significant bits), accumulating in f32. Each layer's output is then within a few
// 2^-9 of its scale; through a network the errors add up as independent roundings, and
// diffusers' own bf16 UNet is 2.1e-2 off its fp32 one (relative L2) on the full-size
// model. Bounds: networks 3e-2 relative L2 (that of diffusers, with room), pictures 3/255
// mean abs (a bf16 picture differs in fine detail, not in what it shows). fp32's bounds
// above stay as they are.
TEST_CASE("parity in bf16 (where the processor has native bf16): text encoders, UNet and VAE within bf16's bounds") {
  if (cpu_features().native_bf16().empty()) {
    MESSAGE("SKIPPED: no native bf16 on " << cpu_features().name << " (bf16 is refused there: test_layers.cpp)");
    return;
  }
  Compute bf16;
  bf16.precision = Precision::bf16;
  for (const fs::path& set : fixture_sets()) {
    const json index = read_json(set / "index.json");
    for (const auto& [name, sections] : index["models"].items()) {
      CAPTURE(name);
      const ModelSource model = ModelSource::open(set / "models" / name);
      const fs::path dir = set / name;
      // The text encoders as the pipeline runs them (text_encoder_compute: weights packed
      // per call, bf16 products); all the outputs the UNet takes.
      for (const char* section : {"text_encoder", "text_encoder_2"}) {
        if (!sections.contains(section)) continue;
        const json& spec = sections[section];
        const std::string component = spec.value("component", "text_encoder");
        const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
        const Compute text = text_encoder_compute(bf16);
        REQUIRE(text.policy.stream_weights);
        const ClipTextOutput out = load_text_encoder(model, component)->encode(text, ref.get("input_ids"));
        for (const auto& [key, got] : by_fixture_name(out)) {
          if (!spec["tensors"].contains(key)) continue;
          const double e = relative_l2(got, ref.get(key));
          MESSAGE(name << " " << component << " " << key << " in bf16: relative L2 error " << e);
          CHECK(e <= 3e-2);
          CHECK(e > 1e-5);  // bf16 really ran
        }
      }
      if (sections.contains("unet")) {
        const json& spec = sections["unet"];
        const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
        const at::Tensor context = ref.get("encoder_hidden_states");
        const auto unet = load_unet(model);
        for (const json& c : spec["cases"]) {
          const at::Tensor sample = ref.get(c["sample"].get<std::string>());
          AddedConditions added;
          if (c.contains("time_ids")) added = {ref.get("text_embeds"), ref.get(c["time_ids"].get<std::string>())};
          const at::Tensor out = unet->forward(bf16, sample, c["timestep"].get<double>(), context.expand({sample.size(0), -1, -1}), added);
          const double e = relative_l2(out, ref.get(c["out"].get<std::string>()));
          MESSAGE(name << " unet " << c["out"].get<std::string>() << " in bf16: relative L2 error " << e);
          CHECK(e <= 3e-2);
          CHECK(e > 1e-5);  // bf16 really ran (fp32 is within 1e-6 here)
        }
      }
      if (sections.contains("vae")) {
        const json& spec = sections["vae"];
        const auto ref = test::fixture_file(dir / spec["file"].get<std::string>());
        const auto vae = load_vae(model);
        for (const json& c : spec["cases"]) {
          if (c["kind"].get<std::string>() != "decode") continue;
          const double e = relative_l2(vae->decode(bf16, ref.get(c["input"].get<std::string>())), ref.get(c["out"].get<std::string>()));
          MESSAGE(name << " vae decode in bf16: relative L2 error " << e);
          CHECK(e <= 3e-2);
        }
      }
    }
  }
}
