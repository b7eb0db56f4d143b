// `inpaint models fetch|list|add|remove` against a local stand-in for the hub (file://
// URLs with the hub's layout): downloads, resume, fallbacks, every way a download can
// go wrong, and that nothing half-written ever sits under a model's final name.
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "engine/model_fetch.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace {

struct Hub {
  fs::path root, hub, models, catalog;
  std::string env() const {
    return "INPAINT_CATALOG=" + catalog.string() + " INPAINT_MODELS=" + models.string() +
           " INPAINT_HF_ENDPOINT=file://" + hub.string() + " ";
  }
  fs::path repo_file(const std::string& path) const { return hub / "test/tiny/resolve/main" / path; }
  int inpaint(const std::string& args, std::string* out) const {
    return test::run(env() + test::inpaint_exe() + " " + args, out);
  }
};

// The tiny fixture model served as repository test/tiny, without its fp16 UNet (so the
// fp16 entry falls back), and a catalog for it; `edit` may change the catalog entry.
Hub make_hub(const std::string& name, const fs::path& model, const std::function<void(nlohmann::json&)>& edit = {}) {
  Hub h;
  h.root = test::temp_dir(name);
  h.hub = h.root / "hub";
  h.models = h.root / "models";
  h.catalog = h.root / "catalog.json";
  fs::create_directories(h.repo_file(""));
  fs::copy(model, h.repo_file(""), fs::copy_options::recursive);
  nlohmann::json files = nlohmann::json::array();
  for (const auto& e : fs::recursive_directory_iterator(model)) {
    if (!e.is_regular_file()) continue;
    const std::string p = fs::relative(e.path(), model).string();
    nlohmann::json f = {{"path", p}};
    if (p == "unet/diffusion_pytorch_model.safetensors")
      f = {{"path", "unet/diffusion_pytorch_model.fp16.safetensors"}, {"fallback", p}};
    if (p == "vae/diffusion_pytorch_model.safetensors") f["sha256"] = inpaint::sha256_of(e.path());
    files.push_back(f);
  }
  nlohmann::json entry = {{"name", "tiny"}, {"kind", "pipeline"}, {"repo", "test/tiny"}, {"files", files}};
  if (edit) edit(entry);
  std::ofstream(h.catalog) << nlohmann::json{{"default", "tiny"}, {"models", {entry}}}.dump(1);
  return h;
}

bool has_files(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file()) return true;
  return false;
}

}  // namespace

TEST_CASE("models fetch: downloads, falls back from fp16, verifies, installs; list shows it") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const Hub h = make_hub("fetch-ok", model);
  std::string out;
  REQUIRE_MESSAGE(h.inpaint("models fetch --quiet", &out) == 0, out);
  CHECK(fs::exists(h.models / "tiny/unet/diffusion_pytorch_model.safetensors"));
  CHECK_FALSE(fs::exists(h.models / ".tiny.partial"));
  REQUIRE(h.inpaint("models list", &out) == 0);
  CHECK(out.find("tiny  ") != std::string::npos);
  CHECK(out.find("ok") != std::string::npos);
  CHECK(out.find("[installed]") != std::string::npos);
  REQUIRE(h.inpaint("models fetch tiny", &out) == 0);  // again: nothing to do
  CHECK(out.find("installed already") != std::string::npos);
  fs::remove(h.models / "tiny/vae/config.json");  // broken: fetched again
  REQUIRE_MESSAGE(h.inpaint("models fetch --quiet tiny", &out) == 0, out);
  CHECK(fs::exists(h.models / "tiny/vae/config.json"));
  CHECK_FALSE(fs::exists(h.models / ".tiny.old"));
}

TEST_CASE("models fetch: resumes a partial download left by an interrupted run") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const Hub h = make_hub("fetch-resume", model);
  const fs::path vae = h.repo_file("vae/diffusion_pytorch_model.safetensors");
  const fs::path part = h.models / ".tiny.partial/vae/diffusion_pytorch_model.safetensors.part";
  fs::create_directories(part.parent_path());
  std::string half(fs::file_size(vae) / 2, '\0');
  std::ifstream(vae, std::ios::binary).read(half.data(), std::streamsize(half.size()));
  std::ofstream(part, std::ios::binary) << half;
  std::string out;
  REQUIRE_MESSAGE(h.inpaint("models fetch tiny", &out) == 0, out);  // the sha256 check passes only if resumed right
  CHECK(inpaint::sha256_of(h.models / "tiny/vae/diffusion_pytorch_model.safetensors") == inpaint::sha256_of(vae));
}

TEST_CASE("models fetch: a wrong file at a catalog path is refused and removed") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const Hub h = make_hub("fetch-wrong", model);
  std::ofstream(h.repo_file("vae/diffusion_pytorch_model.safetensors"), std::ios::app) << "garbage";
  std::string out;
  CHECK(h.inpaint("models fetch --quiet tiny", &out) != 0);
  CHECK(out.find("sha256") != std::string::npos);
  CHECK_FALSE(fs::exists(h.models / "tiny"));
  CHECK_FALSE(fs::exists(h.models / ".tiny.partial/vae/diffusion_pytorch_model.safetensors"));
}

TEST_CASE("models fetch: a file the loader rejects (no sha256 in the catalog) leaves nothing behind") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  const Hub h = make_hub("fetch-truncated", model);
  fs::resize_file(h.repo_file("unet/diffusion_pytorch_model.safetensors"), 5000);
  std::string out;
  CHECK(h.inpaint("models fetch --quiet tiny", &out) != 0);
  CHECK(out.find("diffusion_pytorch_model.safetensors") != std::string::npos);
  CHECK(out.find("removed") != std::string::npos);
  CHECK_FALSE(fs::exists(h.models / "tiny"));
  CHECK_FALSE(fs::exists(h.models / ".tiny.partial"));
}

TEST_CASE("models fetch: missing file, offline, no space, no permission: clear errors, no final folder") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  std::string out;
  SUBCASE("a file not on the server: the finished files are kept for the next try") {
    const Hub h = make_hub("fetch-missing", model);
    fs::remove(h.repo_file("vae/config.json"));
    CHECK(h.inpaint("models fetch --quiet tiny", &out) != 0);
    CHECK(out.find("vae/config.json: not on the server") != std::string::npos);
    CHECK_FALSE(fs::exists(h.models / "tiny"));
    CHECK(has_files(h.models / ".tiny.partial"));
  }
  SUBCASE("offline: one line, then the files to place by hand") {
    const Hub h = make_hub("fetch-offline", model);
    CHECK(test::run(h.env() + "INPAINT_HF_ENDPOINT=http://127.0.0.1:9 " + test::inpaint_exe() + " models fetch tiny",
                    &out) != 0);
    CHECK(out.rfind("inpaint: offline: cannot reach http://127.0.0.1:9", 0) == 0);
    CHECK(out.find((h.models / "tiny").string()) != std::string::npos);
    CHECK(out.find("unet/config.json") != std::string::npos);
    CHECK_FALSE(fs::exists(h.models / "tiny"));
    CHECK_FALSE(fs::exists(h.models / ".tiny.partial"));
  }
  SUBCASE("not enough disk space") {
    const Hub h = make_hub("fetch-space", model, [](nlohmann::json& e) {
      e["files"][0]["approx_bytes"] = uint64_t(1) << 60;
    });
    CHECK(h.inpaint("models fetch tiny", &out) != 0);
    CHECK(out.find("not enough disk space") != std::string::npos);
    CHECK_FALSE(fs::exists(h.models / ".tiny.partial"));
  }
  SUBCASE("a models folder that cannot be written") {
    const Hub h = make_hub("fetch-perm", model);
    std::ofstream(h.root / "a-file") << "x";
    CHECK(test::run(h.env() + "INPAINT_MODELS=" + (h.root / "a-file/models").string() + " " + test::inpaint_exe() +
                    " models fetch tiny", &out) != 0);
    CHECK(out.find("cannot write to") != std::string::npos);
    CHECK(out.find("INPAINT_MODELS") != std::string::npos);
  }
}

TEST_CASE("models add, list, remove; a model folder deleted between runs") {
  REQUIRE_SHARED(model, "fixtures/A/models/tiny-sd15-inpaint");
  REQUIRE_SHARED(images, "assets/images");
  const Hub h = make_hub("models-add", model);
  const fs::path copy = h.root / "my-model";
  fs::copy(model, copy, fs::copy_options::recursive);
  std::string out;
  REQUIRE_MESSAGE(h.inpaint("models add " + copy.string(), &out) == 0, out);
  CHECK(fs::is_symlink(h.models / "my-model"));
  CHECK(h.inpaint("models add " + copy.string(), &out) != 0);  // the name is taken
  CHECK(out.find("already installed") != std::string::npos);
  CHECK(h.inpaint("models add " + (h.root / "nothing").string(), &out) != 0);
  REQUIRE(h.inpaint("models list", &out) == 0);
  CHECK(out.find("my-model -> " + copy.string()) != std::string::npos);

  fs::remove_all(copy);  // deleted behind our back
  REQUIRE(h.inpaint("models list", &out) == 0);
  CHECK(out.find("broken: " + copy.string() + " was deleted or moved") != std::string::npos);
  CHECK(h.inpaint("run --model my-model --image " + (images / "astronaut.png").string() + " --mask " +
                  (images / "astronaut_mask.png").string() + " --out " + (h.root / "y.png").string(), &out) != 0);
  CHECK(out.find("deleted or moved") != std::string::npos);

  REQUIRE(h.inpaint("models remove my-model", &out) == 0);
  CHECK_FALSE(fs::is_symlink(h.models / "my-model"));
  CHECK(h.inpaint("models remove my-model", &out) != 0);
  CHECK(out.find("no installed model named") != std::string::npos);
}
