// Nothing lost, nothing crashes (issue 24): the CLI deletes and overwrites only its own
// files, checks outputs before any work, keeps 16-bit pictures 16-bit, writes valid
// reports, refuses bad configs, non-finite results, FIFOs and absurd headers with the
// file and the reason. Each case failed before its fix.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/json_file.h"
#include "engine/safetensors.h"
#include "models/clip_tokenizer.h"
#include "plugin/core/messages.h"
#include "plugin/core/settings.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace inpaint;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

int inpaint_cli(const std::string& args, std::string* out) {
  return test::run(test::inpaint_exe() + " " + args + " </dev/null", out);
}

// A small picture and a mask with a square in the middle.
void write_pair(const fs::path& image, const fs::path& mask, int channels = 3) {
  Image img{64, 64, channels, std::vector<uint8_t>(size_t(64) * 64 * channels)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 7);
  save_image(image, img);
  Image m{64, 64, 1, std::vector<uint8_t>(size_t(64) * 64)};
  for (int y = 20; y < 44; ++y)
    for (int x = 20; x < 44; ++x) m.pixels[size_t(y) * 64 + x] = 255;
  save_image(mask, m);
}

std::string contents(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A copy of the tiny model whose `file` (relative) config gets `key` = `value`.
fs::path edited_model(const fs::path& model, const fs::path& dir, const std::string& file, const std::string& key,
                      const nlohmann::json& value) {
  fs::copy(model, dir, fs::copy_options::recursive);
  nlohmann::json j = read_json_file(dir / file);
  j[key] = value;
  std::ofstream(dir / file) << j.dump(1);
  return dir;
}

}  // namespace

TEST_CASE("models remove deletes only entries of the models folder, by name; an added model's link, never its target") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("remove-own");
  const fs::path models = d / "models", victim = d / "victim.txt";
  std::ofstream(victim) << "user data";
  const std::string env = "INPAINT_MODELS=" + q(models) + " ";
  std::string out;
  for (const std::string& name : std::vector<std::string>{victim.string(), "../victim.txt", "..", ".", "/", ""}) {
    CAPTURE(name);
    CHECK(test::run(env + test::inpaint_exe() + " models remove " + q(name), &out) != 0);
    CHECK(fs::exists(victim));
  }
  CHECK(out.find("inpaint: ") != std::string::npos);
  REQUIRE_MESSAGE(test::run(env + test::inpaint_exe() + " models add " + q(model) + " --name tiny", &out) == 0, out);
  REQUIRE(fs::is_symlink(models / "tiny"));
  REQUIRE_MESSAGE(test::run(env + test::inpaint_exe() + " models remove tiny", &out) == 0, out);
  CHECK_FALSE(fs::exists(fs::symlink_status(models / "tiny")));
  CHECK(fs::exists(model / "model_index.json"));  // the target is kept
}

TEST_CASE("convert and gen-model --force never replace their source, nor anything inpaint did not write") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(clip, "assets/clip");
  const fs::path d = test::temp_dir("force-own");
  const fs::path copy = d / "model";
  fs::copy(model, copy, fs::copy_options::recursive);
  const std::string unet_before = contents(copy / "unet/diffusion_pytorch_model.safetensors");
  std::string out;
  // Into (or over) the model being read.
  for (const fs::path& target : {copy / "unet", copy, d})
    CHECK(inpaint_cli("convert " + q(copy) + " --out " + q(target) + " --force", &out) == 1);
  CHECK(out.find("overlaps") != std::string::npos);
  CHECK(contents(copy / "unet/diffusion_pytorch_model.safetensors") == unet_before);
  // Over a folder of the user's.
  const fs::path mine = d / "mine";
  fs::create_directories(mine);
  std::ofstream(mine / "notes.txt") << "mine";
  for (const std::string& cmd : {"convert " + q(copy), "gen-model --preset tiny-sd15 --tokenizer " + q(clip)}) {
    CAPTURE(cmd);
    CHECK(inpaint_cli(cmd + " --out " + q(mine) + " --force", &out) == 1);
    CHECK(out.find("not written by inpaint") != std::string::npos);
    CHECK(fs::exists(mine / "notes.txt"));
  }
  // Our own output is replaced, and no partial folder is left beside it.
  REQUIRE_MESSAGE(inpaint_cli("convert " + q(copy) + " --half --out " + q(d / "out"), &out) == 0, out);
  REQUIRE_MESSAGE(inpaint_cli("convert " + q(copy) + " --out " + q(d / "out") + " --force", &out) == 0, out);
  for (const auto& e : fs::directory_iterator(d)) CHECK(e.path().filename().string().find("partial") == std::string::npos);
}

TEST_CASE("inpaint run: outputs are checked before any work and never replace an input (by identity)") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("outputs");
  const fs::path image = d / "photo.png", mask = d / "mask.png";
  write_pair(image, mask);
  fs::create_symlink(image, d / "link.png");
  fs::create_hard_link(image, d / "hard.png");
  fs::create_directories(d / "folder.png");
  mkfifo((d / "fifo.png").c_str(), 0644);
  const std::string photo = contents(image), mask_bytes = contents(mask);
  const std::string run = "run --quiet --steps 1 --seed 1 --image " + q(image) + " --mask " + q(mask) + " --model ";
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"--out " + q(image), "same file as --image"},
      {"--out " + q(d / "." / "mask.png"), "same file as --mask"},
      {"--out " + q(d / "link.png"), "same file as --image"},
      {"--out " + q(d / "hard.png"), "same file as --image"},
      {"--out " + q(d / "o.png") + " --report " + q(d / "o.png"), "same file as --out"},
      {"--out " + q(d / "o.png") + " --report " + q(image), "same file as --image"},
      {"--out " + q(d / "folder.png"), "is a folder"},
      {"--out ''", "empty path"},
      {"--out " + q(d / "missing/o.png"), "does not exist"},
      {"--out /dev/null", "not a regular file"},
      {"--out " + q(d / "fifo.png"), "not a regular file"},
      {"--out " + q(d / "o.tif"), "write .png, .jpg or .jpeg"},
      {"--out " + q(d / "o.png") + " --report " + q(d / "missing/r.json"), "does not exist"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    std::string out;
    // A model that does not exist: the output is refused before it is looked at.
    CHECK(inpaint_cli(run + q(d / "no-model") + " " + c.args, &out) == 1);
    CAPTURE(out);
    CHECK(out.find(c.expect) != std::string::npos);
    CHECK(out.find("no-model") == std::string::npos);
  }
  CHECK(contents(image) == photo);
  CHECK(contents(mask) == mask_bytes);
  CHECK(fs::is_symlink(d / "link.png"));
  struct stat st {};
  CHECK((stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode)));
  CHECK(fs::is_fifo(d / "fifo.png"));
  for (const auto& e : fs::directory_iterator(d)) CHECK(e.path().filename().string().find("partial") == std::string::npos);

  // Through a symlink to another file: that file is replaced, the link stays a link.
  std::ofstream(d / "target.png") << "old";
  fs::create_symlink(d / "target.png", d / "out-link.png");
  std::string out;
  REQUIRE_MESSAGE(inpaint_cli(run + q(model) + " --out " + q(d / "out-link.png"), &out) == 0, out);
  CHECK(fs::is_symlink(d / "out-link.png"));
  CHECK(image_size(d / "target.png").first == 64);
}

TEST_CASE("inpaint run: a 16-bit picture comes out 16-bit, bit-identical where the mask is 0, alpha kept; "
          ".jpg writes JPEG") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("sixteen");
  const fs::path image = d / "deep.png", mask = d / "mask.png";
  write_pair(d / "unused.png", mask);
  Image img{64, 64, 4, std::vector<uint8_t>(size_t(64) * 64 * 4)};
  std::vector<uint16_t> samples(img.pixels.size());
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = uint16_t(i * 2654435761u >> 16);  // all 16 bits used
  save_image(image, img, &samples);
  REQUIRE(image_channels(image) == std::make_pair(4, true));
  std::string out;
  REQUIRE_MESSAGE(inpaint_cli("run --quiet --steps 2 --seed 3 --model " + q(model) + " --image " + q(image) + " --mask " +
                                  q(mask) + " --out " + q(d / "o.png"),
                              &out) == 0,
                  out);
  REQUIRE(image_channels(d / "o.png") == std::make_pair(4, true));
  const std::vector<uint16_t> result = load_samples16(d / "o.png");
  const Mask m = load_mask(mask);
  REQUIRE(result.size() == samples.size());
  size_t outside = 0, identical = 0, inside_changed = 0;
  for (size_t p = 0; p < m.values.size(); ++p) {
    bool same = true;
    for (size_t k = 0; k < 4; ++k) same = same && result[p * 4 + k] == samples[p * 4 + k];
    if (m.values[p] == 0) ++outside, identical += same;
    else inside_changed += !same;
  }
  CHECK(identical == outside);
  CHECK(inside_changed > 0);

  // JPEG: the bytes are a JPEG; a picture with alpha is refused before any work.
  write_pair(d / "rgb.png", mask);
  REQUIRE_MESSAGE(inpaint_cli("run --quiet --steps 1 --seed 3 --model " + q(model) + " --image " + q(d / "rgb.png") +
                                  " --mask " + q(mask) + " --out " + q(d / "o.JPG"),
                              &out) == 0,
                  out);
  CHECK(contents(d / "o.JPG").substr(0, 3) == "\xff\xd8\xff");
  CHECK(inpaint_cli("run --quiet --steps 1 --model " + q(model) + " --image " + q(image) + " --mask " + q(mask) +
                        " --out " + q(d / "alpha.jpg"),
                    &out) == 1);
  CHECK(out.find("JPEG has no alpha") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "alpha.jpg"));
}

TEST_CASE("inpaint run --report: valid JSON whatever the prompt's bytes, written whole") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("report");
  write_pair(d / "p.png", d / "m.png");
  std::string out;
  REQUIRE_MESSAGE(inpaint_cli("run --quiet --steps 1 --seed 1 --model " + q(model) + " --image " + q(d / "p.png") +
                                  " --mask " + q(d / "m.png") + " --out " + q(d / "o.png") + " --report " +
                                  q(d / "r.json") + " --prompt \"$(printf 'bad \\377\\376 bytes')\"",
                              &out) == 0,
                  out);
  const nlohmann::json r = nlohmann::json::parse(contents(d / "r.json"));
  CHECK(r["settings"]["prompt"].get<std::string>() == "bad \xef\xbf\xbd\xef\xbf\xbd bytes");
}

TEST_CASE("configs: every value checked (type, range, consistency) before anything is built, naming file and key") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("configs");
  struct Case {
    std::string file, key;
    nlohmann::json value;
    std::string expect;
  } cases[] = {
      {"unet/config.json", "norm_num_groups", 0, "'norm_num_groups' is 0"},
      {"vae/config.json", "norm_num_groups", 0, "'norm_num_groups' is 0"},
      {"unet/config.json", "layers_per_block", 1000000000, "'layers_per_block' is 1000000000"},
      {"vae/config.json", "layers_per_block", 1000000000, "'layers_per_block'"},
      {"unet/config.json", "in_channels", "nine", "'in_channels' is not an integer"},
      {"unet/config.json", "block_out_channels", {32, 64, 7680000}, "'block_out_channels'"},
      {"text_encoder/config.json", "num_hidden_layers", -1, "'num_hidden_layers'"},
      {"text_encoder/config.json", "hidden_act", 5, "'hidden_act' is not a string"},
      {"vae/config.json", "scaling_factor", 0, "'scaling_factor'"},
      {"scheduler/scheduler_config.json", "num_train_timesteps", 0, "'num_train_timesteps'"},
      {"scheduler/scheduler_config.json", "beta_end", "NaN", "'beta_end'"},
      {"scheduler/scheduler_config.json", "_class_name", 3, "'_class_name'"},
  };
  int i = 0;
  for (const Case& c : cases) {
    CAPTURE(c.file);
    CAPTURE(c.key);
    const fs::path m = edited_model(model, d / std::to_string(i++), c.file, c.key, c.value);
    for (const std::string& cmd : {"info " + q(m), "models add " + q(m)}) {
      std::string out;
      CHECK(test::run("INPAINT_MODELS=" + q(d / "models") + " ulimit -v 4000000; " + test::inpaint_exe() + " " + cmd, &out) == 1);
      CAPTURE(out);
      CHECK(out.find((m / c.file).string()) != std::string::npos);
      CHECK(out.find(c.expect) != std::string::npos);
    }
  }
  CHECK_FALSE(fs::exists(d / "models"));
}

TEST_CASE("info, models add and models list check all that run needs: tokenizer and scheduler") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("run-needs");
  fs::copy(model, d / "m", fs::copy_options::recursive);
  std::ofstream(d / "m/tokenizer/vocab.json") << "[]";
  std::string out;
  CHECK(inpaint_cli("info " + q(d / "m"), &out) == 1);
  CHECK(out.find("vocab.json") != std::string::npos);
  CHECK(test::run("INPAINT_MODELS=" + q(d / "models") + " " + test::inpaint_exe() + " models add " + q(d / "m"), &out) == 1);
  CHECK_FALSE(fs::exists(d / "models/m"));
}

TEST_CASE("NaN and Inf never reach a picture: absurd options refused, non-finite stages fail naming the stage") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("nonfinite");
  write_pair(d / "p.png", d / "m.png");
  const std::string run = "run --quiet --steps 2 --seed 1 --image " + q(d / "p.png") + " --mask " + q(d / "m.png") +
                          " --out " + q(d / "o.png") + " --model ";
  std::string out;
  for (const std::string g : {"inf", "1e308", "nan"}) {
    CHECK(inpaint_cli(run + q(model) + " --guidance " + g, &out) != 0);
    CHECK_FALSE(fs::exists(d / "o.png"));
  }
  std::ofstream(d / "lora.safetensors") << "";
  CHECK(inpaint_cli(run + q(model) + " --lora " + q(d / "lora.safetensors") + ":1e30", &out) == 1);
  CHECK(out.find("[-100, 100]") != std::string::npos);
  // A UNet whose weights hold NaN: the run fails at the first step, nothing written.
  fs::copy(model, d / "nan", fs::copy_options::recursive);
  const fs::path weights = d / "nan/unet/diffusion_pytorch_model.safetensors";
  {
    // conv_out.bias (F32, last in the UNet's output path) set to NaN in place.
    const auto file = SafetensorsFile::open(weights);
    const TensorInfo* t = file->find("conv_out.bias");
    REQUIRE(t);
    REQUIRE(t->dtype == DType::F32);
    std::ifstream in(weights, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const uint64_t header = *reinterpret_cast<const uint64_t*>(bytes.data());
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(8 + header + t->begin));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t k = 0; k < t->numel(); ++k) f.write(reinterpret_cast<const char*>(&nan), 4);
  }
  CHECK(inpaint_cli(run + q(d / "nan"), &out) == 1);
  CHECK(out.find("denoising step 1 (UNet) produced NaN") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "o.png"));
  CHECK(inpaint_cli("info " + q(d / "nan") + " --check-values", &out) == 1);
  CHECK(out.find("conv_out.bias") != std::string::npos);
  CHECK(inpaint_cli("info " + q(d / "nan"), &out) == 0);  // not scanned by default
  CHECK(out.find("--check-values") != std::string::npos);
}

TEST_CASE("files that are not what they claim: FIFOs never block, huge headers and pictures are refused clearly") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("not-files");
  mkfifo((d / "fifo.safetensors").c_str(), 0644);
  std::string out;
  CHECK(test::run("timeout 60 " + test::inpaint_exe() + " info " + q(d / "fifo.safetensors"), &out) == 1);
  CHECK(out.find("not a regular file") != std::string::npos);
  fs::copy(model, d / "m", fs::copy_options::recursive);
  fs::remove(d / "m/unet/config.json");
  mkfifo((d / "m/unet/config.json").c_str(), 0644);
  CHECK(test::run("timeout 60 " + test::inpaint_exe() + " info " + q(d / "m"), &out) == 1);
  CHECK(out.find("not a regular file") != std::string::npos);
  write_pair(d / "p.png", d / "m.png");
  mkfifo((d / "fifo.png").c_str(), 0644);
  CHECK(test::run("timeout 60 " + test::inpaint_exe() + " run --model " + q(model) + " --image " + q(d / "fifo.png") +
                      " --mask " + q(d / "m.png") + " --out " + q(d / "o.png"),
                  &out) == 1);

  // A header of 200,000 tiny entries: refused while parsing, in bounded memory.
  {
    std::string header = "{";
    for (int i = 0; i < 200000; ++i)
      header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},";
    header.back() = '}';
    std::ofstream f(d / "many.safetensors", std::ios::binary);
    for (int i = 0; i < 8; ++i) f.put(char(uint64_t(header.size()) >> (8 * i)));
    f << header;
  }
  CHECK(test::run("ulimit -v 3000000; " + test::inpaint_exe() + " info " + q(d / "many.safetensors"), &out) == 1);
  CHECK(out.find("more than 100000 entries") != std::string::npos);
  // A PNG given as a model.
  CHECK(inpaint_cli("info " + q(d / "p.png"), &out) == 1);
  CHECK(out.find("not a safetensors file: it is a PNG image") != std::string::npos);
}

TEST_CASE("--max-memory: one rule for every value, and the picture's own buffers count") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const fs::path d = test::temp_dir("budget");
  write_pair(d / "p.png", d / "m.png");
  std::string out;
  for (const std::string size : {"0.5", "1", "100K"}) {
    CAPTURE(size);
    CHECK(inpaint_cli("run --method classic --image " + q(d / "p.png") + " --mask " + q(d / "m.png") + " --out " +
                          q(d / "o.png") + " --max-memory " + size,
                      &out) == 1);
    CHECK(out.find("too little") != std::string::npos);
  }
  CHECK(inpaint_cli("run --quiet --method classic --image " + q(d / "p.png") + " --mask " + q(d / "m.png") +
                        " --out " + q(d / "o.png") + " --max-memory 300M",
                    &out) == 0);
  CHECK(inpaint_cli("run --method classic --image " + q(d / "p.png") + " --mask " + q(d / "m.png") + " --out " +
                        q(d / "o.png") + " --max-memory 0",
                    &out) == 1);
}

TEST_CASE("SIGTERM and SIGHUP cancel like Ctrl-C: exit 130, nothing written, no partial file") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(images, "assets/images");
  for (const std::string sig : {"TERM", "HUP"}) {
    CAPTURE(sig);
    const fs::path d = test::temp_dir("signal-" + sig);
    const std::string cmd = test::inpaint_exe() + " run --quiet --model " + q(model) + " --image " +
                            q(images / "astronaut.png") + " --mask " + q(images / "astronaut_mask.png") + " --out " +
                            q(d / "o.png") + " --steps 900 --seed 1";
    std::ofstream(d / "kill.sh") << cmd << " &\npid=$!\nsleep 3\nkill -" << sig << " $pid\nwait $pid\necho rc=$?\n";
    std::string out;
    CHECK(test::run("sh " + q(d / "kill.sh"), &out) == 0);
    CAPTURE(out);
    CHECK(out.find("rc=130") != std::string::npos);
    CHECK(std::distance(fs::directory_iterator(d), fs::directory_iterator()) == 1);  // kill.sh only
  }
}

TEST_CASE("pictures too large say so, with the limit") {
  const fs::path d = test::temp_dir("huge-picture");
  // An IHDR of 200000 x 200000 (stb refuses it without saying why).
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\0\0\x0dIHDR", 8);
  for (int k = 0; k < 2; ++k) png += std::string("\x00\x03\x0d\x40", 4);
  png += std::string("\x08\x02\0\0\0", 5) + std::string(4, '\0');
  std::ofstream(d / "huge.png", std::ios::binary) << png;
  CHECK_THROWS_WITH_AS(image_size(d / "huge.png"), doctest::Contains("200000x200000 pixels: too large"), Error);
}

TEST_CASE("GIMP messages name the dialog's settings, not the CLI's options") {
  CHECK(gimp_message("--steps is 0; it must be between 1 and 1000") == "Steps is 0; it must be between 1 and 1000");
  CHECK(gimp_message("--max-memory 0.10 GB is too little") == "Memory limit 0.10 GB is too little");
  CHECK(gimp_message("the context margin (--context) must be -1") == "the context margin (Context margin) must be -1");
  CHECK(gimp_message("--negative-prompt and --prompt") == "Negative prompt and Prompt");
  CHECK(gimp_message("--stepsize stays") == "--stepsize stays");
}

TEST_CASE("the plug-in's settings read back from GIMP are checked: other layouts reset, strings cut, numbers in range") {
  plugin::Settings s;
  CHECK_FALSE(plugin::sanitize(s));  // the defaults are sound
  std::fill(std::begin(s.prompt), std::end(s.prompt), 'x');  // no terminating NUL
  s.steps = 0;
  s.guidance = std::numeric_limits<double>::quiet_NaN();
  s.strength = 7;
  s.resolution = -5;
  CHECK(plugin::sanitize(s));
  CHECK(std::string(s.prompt).size() == sizeof s.prompt - 1);
  CHECK(s.steps == 1);
  CHECK(s.guidance == plugin::Settings{}.guidance);
  CHECK(s.strength == 1.0);
  CHECK(s.resolution == 0);
  s.version = 1;
  CHECK(plugin::sanitize(s));
  CHECK(s.steps == plugin::Settings{}.steps);
}

TEST_CASE("install-plugin.sh lets GIMP create a new profile itself before installing into it (the GIMP the plug-in "
          "was built for), with the CLIP vocabulary beside the plug-in") {
  if (std::string(INPAINT_PLUGIN).empty()) {
    MESSAGE("no GIMP plug-in built: skipped");
    return;
  }
  const bool gimp3 = INPAINT_GIMP_API == 3;
  const std::string variable = gimp3 ? "GIMP3_DIRECTORY=" : "GIMP2_DIRECTORY=";
  const fs::path d = test::temp_dir("fresh-profile");
  std::string out;
  REQUIRE_MESSAGE(test::run(variable + q(d / "profile") + " bash " + INPAINT_SOURCE_DIR + "/install/install-plugin.sh " +
                                q(fs::path(INPAINT_EXE).parent_path()),
                            &out) == 0,
                  out);
  CHECK(fs::is_directory(d / "profile/gradients"));
  CHECK(fs::exists(d / "profile/plug-ins/inpaint-gimp/inpaint-gimp"));
  CHECK(fs::exists(d / "profile/plug-ins/inpaint-gimp/clip/vocab.json"));
  const std::string start = gimp3 ? "gimp-console-3.0 -i -d -f --batch-interpreter=plug-in-script-fu-eval -b '(gimp-quit TRUE)' --quit"
                                  : "gimp-console-2.10 -i -d -f -b '(gimp-quit 0)'";
  const int status = test::run(variable + q(d / "profile") + " timeout 300 " + start + " </dev/null", &out);
  if (!gimp3) CHECK(status == 0);  // GIMP 3 ends its batch with --quit, whose status says nothing here
  CHECK(out.find("does not exist") == std::string::npos);
}

TEST_CASE("tokenizer: vocab.json read as it is parsed; what is not a token -> integer map is refused with the reason") {
  const fs::path d = test::temp_dir("tokenizer-files");
  // A vocabulary of its own: bytes as CLIP names them, one merge, the special tokens.
  const std::string specials = R"("<|startoftext|>": 7, "<|endoftext|>": 8)";
  std::ofstream(d / "merges.txt") << "#version: 0.2\n\nh i</w>\n";
  auto vocab = [&](const std::string& text) { std::ofstream(d / "vocab.json") << text; };
  vocab(R"({"h": 1, "i</w>": 2, "hi</w>": 3, )" + specials + "}");
  const ClipTokenizer tok = ClipTokenizer::load(d);
  CHECK(tok.encode("hi") == std::vector<int64_t>{3});     // merged by the one rule
  CHECK(tok.encode("ih") == std::vector<int64_t>{8, 8});  // "i" and "h</w>": no tokens, unknown
  CHECK(tok.bos_id() == 7);
  for (const auto& [text, reason] : std::vector<std::pair<std::string, std::string>>{
           {"{\"h\": 1,", "not valid JSON"},
           {"[1, 2]", "not a token map"},
           {"{}", "not a token map"},
           {"7", "not a token map"},
           {R"({"h": "one", )" + specials + "}", "id of 'h' is not an integer"},
           {R"({"h": 1.5, )" + specials + "}", "id of 'h' is not an integer"},
           {R"({"h": {"id": 1}, )" + specials + "}", "id of 'h' is not an integer"},
           {R"({"h": [1], )" + specials + "}", "id of 'h' is not an integer"},
           {R"({"h": 1})", "special token '<|startoftext|>' is not in the vocabulary"}}) {
    CAPTURE(text);
    vocab(text);
    CHECK_THROWS_WITH_AS(ClipTokenizer::load(d), doctest::Contains(reason.c_str()), Error);
  }
  vocab(R"({"h": 1, )" + specials + "}");
  std::ofstream(d / "merges.txt") << "#version: 0.2\nhi\n";
  CHECK_THROWS_WITH_AS(ClipTokenizer::load(d), doctest::Contains("malformed line 'hi'"), Error);
}
