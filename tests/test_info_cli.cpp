// The `inpaint` command line: info output and exit codes, gen-model, bad input.
#include <fstream>

#include "tests/test_support.h"

namespace fs = std::filesystem;

TEST_CASE("inpaint info on the fixture models reports architecture and counts") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  std::string out;
  REQUIRE(test::run(test::inpaint_exe() + " info " + model.string(), &out) == 0);
  CHECK(out.find("SD 1.x inpainting (9-channel UNet)") != std::string::npos);
  CHECK(out.find("unet: 2.5 M parameters (2493284)") != std::string::npos);
  CHECK(out.find("vae: 1.4 M parameters (1399879)") != std::string::npos);
  CHECK(out.find("text_encoder: 3.2 M parameters (3234112)") != std::string::npos);
  CHECK(out.find("OK") != std::string::npos);
  REQUIRE(test::run(test::inpaint_exe() + " info --json " + model.string(), &out) == 0);
  const auto j = nlohmann::json::parse(out);
  CHECK(j["ok"] == true);
  CHECK(j["components"]["unet"]["dtypes"]["F32"] == 684);
  REQUIRE_SHARED(sd2, "fixtures/A/models/tiny-sd2-inpaint");
  REQUIRE(test::run(test::inpaint_exe() + " info " + sd2.string(), &out) == 0);
  CHECK(out.find("SD 2.x inpainting") != std::string::npos);
}

TEST_CASE("gen-model writes a model info accepts, in f16 and as a single file") {
  REQUIRE_SHARED(clip, "assets/clip");
  const fs::path d = test::temp_dir("cli-gen");
  const std::string gen = test::inpaint_exe() + " gen-model --preset tiny-sd2-inpaint --seed 1 --tokenizer " + clip.string();
  std::string out;
  REQUIRE(test::run(gen + " --dtype f16 --out " + (d / "m").string(), &out) == 0);
  REQUIRE(test::run(test::inpaint_exe() + " info " + (d / "m").string(), &out) == 0);
  CHECK(out.find("F16×684") != std::string::npos);
  CHECK(out.find("SD 2.x inpainting") != std::string::npos);
  // Refuses to overwrite, says how.
  CHECK(test::run(gen + " --out " + (d / "m").string(), &out) == 1);
  CHECK(out.find("--force") != std::string::npos);
  REQUIRE(test::run(gen + " --single-file --out " + (d / "s/model.safetensors").string(), &out) == 0);
  REQUIRE(test::run(test::inpaint_exe() + " info " + (d / "s/model.safetensors").string(), &out) == 0);
  CHECK(out.find("single-file checkpoint") != std::string::npos);
  CHECK(test::run(test::inpaint_exe() + " gen-model --preset nope --out " + (d / "x").string(), &out) == 1);
  CHECK(out.find("known presets") != std::string::npos);
}

TEST_CASE("inpaint info: bad input exits non-zero with one message, never a crash") {
  const fs::path d = test::temp_dir("cli-bad");
  std::ofstream(d / "lying.safetensors") << std::string("\x10\0\0\0\0\0\0\0", 8) << "{\"a\":{\"dtype\":1}}";
  std::ofstream(d / "weights.ckpt") << "\x80\x02 not really";
  fs::create_directories(d / "empty");
  for (const std::string bad : {"lying.safetensors", "weights.ckpt", "empty", "missing"}) {
    CAPTURE(bad);
    std::string out;
    CHECK(test::run(test::inpaint_exe() + " info " + (d / bad).string(), &out) == 1);
    CHECK(out.rfind("inpaint: ", 0) == 0);
    CHECK(out.find((d / bad).string()) != std::string::npos);
  }
}
