// `inpaint run` end to end on real photos with a tiny model, and every bad input.
#include <stb_image.h>
#include <stb_image_write.h>

#include <fstream>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/inpaint.h"
#include "models/compute.h"
#include "models/kernels/cpu.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;

namespace {

std::string run_cmd(const std::string& model, const fs::path& image, const fs::path& mask, const fs::path& out,
                    const std::string& extra = "") {
  return test::inpaint_exe() + " run --quiet --model " + model + " --image " + image.string() + " --mask " +
         mask.string() + " --out " + out.string() + " --prompt 'a red brick wall' --steps 2 --seed 1 " + extra;
}

// A PNG whose header claims width x height but holds no pixels (stbi_info reads it).
void header_only_png(const fs::path& p, uint32_t width, uint32_t height) {
  auto be32 = [](std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
  };
  std::string chunk = "IHDR";
  be32(chunk, width);
  be32(chunk, height);
  chunk += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, deflate, no filter/interlace
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : chunk) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  std::string file = "\x89PNG\r\n\x1a\n";
  be32(file, 13);
  file += chunk;
  be32(file, ~crc);
  std::ofstream(p, std::ios::binary) << file;
}

}  // namespace

TEST_CASE("inpaint run on real photos: unmasked pixels are bit-identical, the masked area changes") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(images, "assets/images");
  const fs::path d = test::temp_dir("run-photos");
  for (const std::string name : {"astronaut", "chelsea"}) {
    CAPTURE(name);
    const fs::path image = images / (name + ".png"), mask = images / (name + "_mask.png");
    std::string out;
    REQUIRE_MESSAGE(test::run(run_cmd(model.string(), image, mask, d / (name + ".png"),
                                      "--report " + (d / (name + ".json")).string()), &out) == 0, out);
    const Image in = load_image(image), res = load_image(d / (name + ".png"));
    const Mask m = load_mask(mask);
    REQUIRE(res.width == in.width);
    REQUIRE(res.height == in.height);
    REQUIRE(res.channels == in.channels);
    size_t outside = 0, outside_same = 0, inside_changed = 0;
    for (size_t i = 0; i < m.values.size(); ++i) {
      bool same = true;
      for (int k = 0; k < in.channels; ++k) same = same && in.pixels[i * in.channels + k] == res.pixels[i * in.channels + k];
      if (m.values[i] == 0.0f) {
        ++outside;
        outside_same += same;
      } else if (!same) {
        ++inside_changed;
      }
    }
    CHECK(outside > 0);
    CHECK(outside_same == outside);
    CHECK(inside_changed > 0);
    std::ifstream rin(d / (name + ".json"));
    const auto report = nlohmann::json::parse(rin);
    for (const char* key : {"seconds_total", "seconds_per_step", "peak_rss_bytes", "stages", "seed", "settings"})
      CHECK(report.contains(key));
    CHECK(report["seed"] == 1);
    CHECK(report["stages"].contains("denoise"));
  }
}

TEST_CASE("inpaint run: the same seed gives the same image; no seed prints the one used") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd2-inpaint");
  REQUIRE_SHARED(image, "fixtures/A/tiny-sd2-inpaint/img_64x96.png");
  REQUIRE_SHARED(mask, "fixtures/A/tiny-sd2-inpaint/img_64x96_mask.png");
  const fs::path d = test::temp_dir("run-seed");
  std::string out;
  REQUIRE(test::run(run_cmd(model.string(), image, mask, d / "a.png", "--scheduler euler_a"), &out) == 0);
  REQUIRE(test::run(run_cmd(model.string(), image, mask, d / "b.png", "--scheduler euler_a"), &out) == 0);
  CHECK(load_image(d / "a.png").pixels == load_image(d / "b.png").pixels);
  const std::string no_seed = test::inpaint_exe() + " run --model " + model.string() + " --image " + image.string() +
                              " --mask " + mask.string() + " --out " + (d / "c.png").string() + " --steps 1";
  REQUIRE(test::run(no_seed, &out) == 0);
  CHECK(out.find("seed: ") != std::string::npos);
}

TEST_CASE("inpaint run: bad input gets one clear error, exit 1, nothing written") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(image, "fixtures/A/tiny-sd15-inpaint/img_64x96.png");
  REQUIRE_SHARED(mask, "fixtures/A/tiny-sd15-inpaint/img_64x96_mask.png");
  REQUIRE_SHARED(other_mask, "fixtures/A/tiny-sd15-inpaint/img_64x64_mask.png");
  const fs::path d = test::temp_dir("run-bad");
  std::ofstream(d / "text.png") << "this is not an image";
  {  // 1x1 picture and mask
    const uint8_t px[3] = {1, 2, 3}, mk[1] = {255};
    stbi_write_png((d / "one.png").c_str(), 1, 1, 3, px, 3);
    stbi_write_png((d / "one_mask.png").c_str(), 1, 1, 1, mk, 1);
  }
  header_only_png(d / "huge.png", 20000, 20000);
  header_only_png(d / "big.png", 3000, 2000);
  const std::string m = model.string();
  struct Case {
    const char* what;
    std::string command;
    std::vector<std::string> expect;
  } cases[] = {
      {"sizes", run_cmd(m, image, other_mask, d / "o.png"), {"96x64", "64x64"}},
      {"not an image", run_cmd(m, d / "text.png", mask, d / "o.png"), {"text.png", "not a readable"}},
      {"missing file", run_cmd(m, d / "nope.png", mask, d / "o.png"), {"nope.png", "no such file"}},
      {"scheduler", run_cmd(m, image, mask, d / "o.png", "--scheduler fancy"), {"fancy", "dpmpp_2m_karras"}},
      {"steps 0", run_cmd(m, image, mask, d / "o.png", "--steps 0"), {"--steps", "1000"}},
      {"steps 1001", run_cmd(m, image, mask, d / "o.png", "--steps 1001"), {"--steps"}},
      {"strength 0", run_cmd(m, image, mask, d / "o.png", "--strength 0"), {"--strength", "(0, 1]"}},
      {"strength 1.5", run_cmd(m, image, mask, d / "o.png", "--strength 1.5"), {"--strength"}},
      {"guidance", run_cmd(m, image, mask, d / "o.png", "--guidance -1"), {"--guidance"}},
      {"1x1", run_cmd(m, d / "one.png", d / "one_mask.png", d / "o.png"), {"1x1", "at least 8x8"}},
      {"20000x20000", run_cmd(m, d / "huge.png", d / "huge.png", d / "o.png"), {"20000x20000", "megapixels"}},
      {"model", run_cmd((d / "no-model").string(), image, mask, d / "o.png"), {"no-model", "no such file"}},
      {"roi off, 6 MP", run_cmd(m, d / "big.png", d / "big.png", d / "o.png", "--roi off"), {"3000x2000", "--roi auto"}},
      {"context", run_cmd(m, image, mask, d / "o.png", "--context -5"), {"--context"}},
      {"resolution", run_cmd(m, image, mask, d / "o.png", "--resolution 8"), {"--resolution", "64"}},
      {"max memory size", run_cmd(m, image, mask, d / "o.png", "--max-memory lots"), {"lots", "1G"}},
      {"max memory too low", run_cmd(m, image, mask, d / "o.png", "--max-memory 20M"), {"--max-memory", "at least"}},
  };
  for (const auto& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    std::string out;
    CHECK(test::run(c.command, &out) == 1);
    CAPTURE(out);
    CHECK(out.rfind("inpaint: ", 0) == 0);
    for (const auto& e : c.expect) CHECK(out.find(e) != std::string::npos);
    CHECK_FALSE(fs::exists(d / "o.png"));
  }
  std::string out;  // a usage error (CLI11's own exit code)
  CHECK(test::run(run_cmd(m, image, mask, d / "o.png", "--roi maybe"), &out) != 0);
  CHECK(out.find("--roi: maybe not in {auto,off}") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "o.png"));
}

TEST_CASE("inpaint run: an empty mask says so, exits 0 and writes the input unchanged") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(image, "fixtures/A/tiny-sd15-inpaint/img_64x64.png");
  const fs::path d = test::temp_dir("run-empty");
  const std::vector<uint8_t> zeros(64 * 64, 0);
  stbi_write_png((d / "empty.png").c_str(), 64, 64, 1, zeros.data(), 64);
  std::string out;
  REQUIRE(test::run(run_cmd(model.string(), image, d / "empty.png", d / "o.png"), &out) == 0);
  CHECK(out.find("nothing to inpaint") != std::string::npos);
  CHECK(load_image(d / "o.png").pixels == load_image(image).pixels);
}

TEST_CASE("engine: a progress callback that says stop cancels cleanly between steps") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(image, "fixtures/A/tiny-sd15-inpaint/img_64x64.png");
  REQUIRE_SHARED(mask, "fixtures/A/tiny-sd15-inpaint/img_64x64_mask.png");
  struct StopAfterTwo : Progress {
    int seen = 0;
    bool step(int done, int, double) override {
      seen = done;
      return done < 2;
    }
  } progress;
  const ModelSource model = ModelSource::open(model_dir);
  GenerationOptions o;
  o.steps = 5;
  CHECK_THROWS_AS(inpaint_image(model, {}, load_image(image), load_mask(mask), o, {}, progress), Cancelled);
  CHECK(progress.seen == 2);
}

TEST_CASE("inpaint run with a plain 4-channel model (masked-latent blending) and strength < 1") {
  REQUIRE_SHARED(clip, "assets/clip");
  REQUIRE_SHARED(image, "fixtures/A/tiny-sd15-inpaint/img_64x96.png");
  REQUIRE_SHARED(mask, "fixtures/A/tiny-sd15-inpaint/img_64x96_mask.png");
  const fs::path d = test::temp_dir("run-4ch");
  std::string out;
  REQUIRE(test::run(test::inpaint_exe() + " gen-model --preset tiny-sd15 --seed 2 --tokenizer " + clip.string() +
                    " --out " + (d / "m").string(), &out) == 0);
  for (const std::string extra : {"--scheduler ddim", "--scheduler euler --strength 0.6"}) {
    CAPTURE(extra);
    REQUIRE_MESSAGE(test::run(run_cmd((d / "m").string(), image, mask, d / "o.png", extra), &out) == 0, out);
    const Image in = load_image(image), res = load_image(d / "o.png");
    const Mask m = load_mask(mask);
    size_t changed = 0;
    for (size_t i = 0; i < m.values.size(); ++i)
      for (int k = 0; k < in.channels; ++k) {
        const bool same = in.pixels[i * in.channels + k] == res.pixels[i * in.channels + k];
        if (m.values[i] == 0.0f) CHECK(same);
        else changed += !same;
      }
    CHECK(changed > 0);
  }
}

TEST_CASE("inpaint run: Ctrl-C (SIGINT) stops between steps, exits 130, writes nothing") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(images, "assets/images");
  const fs::path d = test::temp_dir("run-sigint");
  const std::string cmd = run_cmd(model.string(), images / "astronaut.png", images / "astronaut_mask.png",
                                  d / "o.png", "--steps 900");  // still running at 3 s
  std::ofstream(d / "interrupt.sh") << cmd << " &\npid=$!\nsleep 3\nkill -INT $pid\nwait $pid\necho rc=$?\n";
  std::string out;
  const int rc = test::run("sh " + (d / "interrupt.sh").string(), &out);
  CHECK(rc == 0);
  CAPTURE(out);
  CHECK(out.find("rc=130") != std::string::npos);
  CHECK(out.find("cancelled") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "o.png"));
}

TEST_CASE("inpaint run: LCM with a LoRA, TAESD instead of the VAE, and --profile's report") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(image, "fixtures/A/tiny-sd15-inpaint/img_64x96.png");
  REQUIRE_SHARED(mask, "fixtures/A/tiny-sd15-inpaint/img_64x96_mask.png");
  REQUIRE_SHARED(taesd, "assets/taesd");
  const fs::path d = test::temp_dir("run-fast");
  std::string out;
  REQUIRE_MESSAGE(test::run(test::inpaint_exe() + " gen-lora --preset tiny-sd15-inpaint --rank 4 --out " +
                            (d / "lora.safetensors").string(), &out) == 0, out);
  const std::string fast = "--scheduler lcm --steps 2 --guidance 1 --lora " + (d / "lora.safetensors").string() + ":0.8 ";
  // The same LoRA as an installed one, by name.
  fs::create_directories(d / "models/lora/mine");
  fs::copy_file(d / "lora.safetensors", d / "models/lora/mine/weights.safetensors");
  REQUIRE_MESSAGE(test::run("INPAINT_MODELS=" + (d / "models").string() + " " +
                                run_cmd(model.string(), image, mask, d / "vae.png",
                                        "--scheduler lcm --steps 2 --guidance 1 --lora mine:0.8"),
                            &out) == 0, out);
  REQUIRE_MESSAGE(test::run(run_cmd(model.string(), image, mask, d / "taesd.png",
                                    fast + "--profile --report " + (d / "r.json").string() + " --vae " + taesd.string()),
                            &out) == 0, out);
  CHECK(out.find("convolution") != std::string::npos);  // the printed profile
  const Image a = load_image(d / "vae.png"), b = load_image(d / "taesd.png"), in = load_image(image);
  const Mask m = load_mask(mask);
  size_t differ = 0, outside = 0;
  for (size_t i = 0; i < m.values.size(); ++i)
    for (int k = 0; k < 3; ++k) {
      differ += a.pixels[i * 3 + k] != b.pixels[i * 3 + k];
      outside += m.values[i] == 0.0f && b.pixels[i * 3 + k] != in.pixels[i * 3 + k];
    }
  CHECK(differ > 100);
  CHECK(outside == 0);
  std::ifstream rin(d / "r.json");
  const auto report = nlohmann::json::parse(rin);
  CHECK(report["profile"]["gflop_per_step"].get<double>() > 0);
  CHECK(report["profile"]["convolution"]["calls"].get<int>() > 0);
  CHECK(report["seconds_to_first_step"].get<double>() > 0);
  CHECK(report["settings"]["loras"].size() == 1);
  // The LoRA merged into the cache by the first run; the second takes it from there without
  // reading the LoRA file, and paints the same picture (in fp32: the low-rank product added
  // before or after the matrix product, the rounding differs by ~1e-6).
  const std::string cached = "INPAINT_CACHE=" + (d / "cache").string() + " ";
  for (const std::string name : {"first", "second"}) {
    REQUIRE_MESSAGE(test::run(cached + run_cmd(model.string(), image, mask, d / (name + ".png"),
                                               fast + "--precision fp32 --report " + (d / (name + ".json")).string()),
                              &out) == 0, out);
    std::ifstream in(d / (name + ".json"));
    const auto r = nlohmann::json::parse(in);
    CHECK(r["lora_cache"] == (name == "first" ? "written" : "used"));
    // The first run's UNet (the LoRA apart) is not kept packed: the second reads the
    // merged weights, and keeps those.
    CHECK(r["packed_cache"]["unet"] == (name == "first" ? "missing" : "written"));
  }
  int packed_unets = 0;
  for (const auto& f : fs::directory_iterator(d / "cache" / "packed"))
    packed_unets += f.path().filename().string().rfind("unet-", 0) == 0;
  CHECK(packed_unets == 1);
  const Image first = load_image(d / "first.png"), second = load_image(d / "second.png");
  REQUIRE(first.pixels.size() == second.pixels.size());
  int most = 0;
  for (size_t i = 0; i < first.pixels.size(); ++i) most = std::max(most, std::abs(int(first.pixels[i]) - int(second.pixels[i])));
  CHECK(most <= 1);
  // A missing TAESD says how to get it.
  CHECK(test::run(run_cmd(model.string(), image, mask, d / "x.png", "--vae " + (d / "none").string()), &out) == 1);
  CHECK(out.find("taesd_encoder.safetensors") != std::string::npos);
}

TEST_CASE("--precision: auto is bf16 where the processor multiplies bf16 natively, else fp32; the report says what ran") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(image, "fixtures/A/tiny-sd15-inpaint/img_64x96.png");
  REQUIRE_SHARED(mask, "fixtures/A/tiny-sd15-inpaint/img_64x96_mask.png");
  const fs::path d = test::temp_dir("run-precision");
  const std::string native = cpu_features().native_bf16();
  for (const std::string asked : {"", "auto", "fp32", "bf16"}) {
    CAPTURE(asked);
    std::string out;
    const std::string extra = (asked.empty() ? "" : "--precision " + asked) + " --report " + (d / "r.json").string();
    const int status = test::run(run_cmd(model.string(), image, mask, d / "o.png", extra), &out);
    if (asked == "bf16" && native.empty()) {  // refused, naming the option, nothing written
      CHECK(status != 0);
      CHECK(out.find("--precision bf16") != std::string::npos);
      continue;
    }
    REQUIRE_MESSAGE(status == 0, out);
    std::ifstream in(d / "r.json");
    const auto report = nlohmann::json::parse(in);
    const std::string expected = asked == "fp32" ? "fp32" : asked == "bf16" || !native.empty() ? "bf16" : "fp32";
    CHECK(report["settings"]["precision"] == expected);
    CHECK(report["settings"]["cpu_native_bf16"] == native);
  }
  // Streamed weights (--max-memory's policies) are packed per call: bf16 there too; bf16
  // needs packed weights.
  ComputePolicy streamed, unpacked;
  streamed.stream_weights = true;
  unpacked.packed_convolutions = false;
  CHECK(effective_precision(Precision::bf16, streamed) == Precision::bf16);
  CHECK(effective_precision(Precision::bf16, unpacked) == Precision::fp32);
  CHECK(effective_precision(Precision::bf16, ComputePolicy{}) == Precision::bf16);
}
