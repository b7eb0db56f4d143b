// Weights packed for oneDNN kept on disk (engine/packed_cache.h): the next load maps them
// and computes the same numbers without packing anything; a damaged file is refused.
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in ATen.h from libtorch 2)
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "engine/networks.h"
#include "engine/packed_cache.h"
#include "engine/own_files.h"
#include "models/kernels/packed_conv.h"
#include "models/kernels/packed_layout.h"
#include "tests/parity_support.h"
#include "tests/test_support.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace fs = std::filesystem;
using namespace inpaint;

namespace {
// Overwrites one byte at `offset` (from the end when negative) with `value`.
void flip_byte(const fs::path& file, std::streamoff offset, char value) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset, offset < 0 ? std::ios::end : std::ios::beg);
  f.put(value);
}

std::streamoff offset_of(const fs::path& file, const std::string& text) {
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = bytes.find(text);
  REQUIRE(at != std::string::npos);
  return std::streamoff(at);
}

// Rewrites a kept file with its data 8 bytes further (8 spaces more in the header) and a
// checksum made right again: a file written before the writer aligned its data.
void shift_data(const fs::path& file) {
  std::string image;
  {
    std::ifstream in(file, std::ios::binary);
    image.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= uint64_t(uint8_t(image[size_t(i)])) << (8 * i);
  std::string header = image.substr(8, len) + std::string(8, ' ');
  const std::string field = std::string("\"") + kChecksumKey + "\":\"";
  const size_t value = header.find(field) + field.size();
  const std::string digests = header.substr(value, header.find('"', value) - value);
  std::string start(8, '\0');
  for (int i = 0; i < 8; ++i) start[size_t(i)] = char(uint64_t(header.size()) >> (8 * i));
  header.replace(value, digests.size(), std::string(digests.size(), '0'));
  char sum[17];
  std::snprintf(sum, sizeof sum, "%016llx", (unsigned long long)XXH3_64bits((start + header).data(), 8 + header.size()));
  header.replace(value, digests.size(), sum + digests.substr(16));
  std::ofstream(file, std::ios::binary | std::ios::trunc) << start << header << image.substr(8 + len);
}

size_t packed_count(const PackedSlots& slots) {
  size_t n = 0;
  for (const auto& [name, slot] : slots) {
    at::Tensor data;
    std::string layout;
    n += packed_contents(*slot, data, layout) ? 1 : 0;
  }
  return n;
}
// The tiny UNet, its fixture input and where its packed weights go, in a fresh folder.
struct TinyUnet {
  fs::path dir;
  ModelSource model;
  at::Tensor x, ctx;
  fs::path file;
};

TinyUnet tiny_unet(const fs::path& model_dir, const std::string& folder) {
  TinyUnet t{test::temp_dir(folder), ModelSource::open(model_dir), {}, {}, {}};
  const auto un = test::fixture_file(test::shared("fixtures/A/tiny-sd15-inpaint") / "unet.safetensors");
  t.x = un.get("sample0");
  t.ctx = un.get("encoder_hidden_states");
  t.file = packed_cache_file(t.dir, t.model.component("unet"), {}, unet_shapes(1, 8, 8));
  return t;
}
}  // namespace

TEST_CASE("packed weights kept on disk: mapped at the next load, same output, nothing packed again; "
          "a damaged file is refused; the files used last are kept") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  const TinyUnet t = tiny_unet(model_dir, "packed-cache");
  const fs::path& d = t.dir;
  const ModelSource& model = t.model;
  const at::Tensor &x = t.x, &ctx = t.ctx;
  const fs::path& file = t.file;
  at::NoGradGuard no_grad;

  PackedSlots first;
  const at::Tensor in_memory = load_unet(model, &first)->forward({}, x, 981, ctx);
  CHECK(use_packed_cache(file, first, {}) == 0);  // nothing kept yet
  CHECK(packed_in_memory(first));
  const size_t packed = packed_count(first);
  MESSAGE(packed << " of the tiny UNet's " << first.size() << " convolution and linear weights packed");
  CHECK(packed > first.size() / 2);
  REQUIRE(write_packed_cache(file, first, {}));
  CHECK(fs::exists(file));

  PackedSlots second;
  const auto unet = load_unet(model, &second);
  CHECK(use_packed_cache(file, second, {}) == packed);
  CHECK(at::equal(unet->forward({}, x, 981, ctx), in_memory));
  CHECK_FALSE(packed_in_memory(second));

  // Damaged: refused, packed in memory again with the same result.
  fs::resize_file(file, fs::file_size(file) / 2);
  PackedSlots third;
  const auto again = load_unet(model, &third);
  CHECK(use_packed_cache(file, third, {}) == 0);
  CHECK(at::equal(again->forward({}, x, 981, ctx), in_memory));
  CHECK(packed_in_memory(third));

  // Another model's file is another name, as is the same model's at another batch or
  // latent size (layouts depend on them: a file each, not one rewritten in turn); four
  // files are kept, the oldest goes.
  CHECK(packed_cache_file(d, model.component("vae"), {}, unet_shapes(1, 8, 8)) != file);
  CHECK(packed_cache_file(d, model.component("unet"), {}, unet_shapes(2, 8, 8)) != file);
  CHECK(packed_cache_file(d, model.component("unet"), {}, unet_shapes(1, 8, 16)) != file);
  CHECK(packed_cache_file(d, model.component("unet"), {}, unet_shapes(1, 8, 8)) == file);
  REQUIRE(write_packed_cache(file, third, {}));
  for (int i = 0; i < 4; ++i)
    REQUIRE(write_packed_cache(d / ("unet-" + std::string(15, '0') + std::to_string(i) + ".safetensors"), third, {}));
  CHECK_FALSE(fs::exists(file));
  CHECK(std::distance(fs::directory_iterator(d), fs::directory_iterator()) == 4);
}

TEST_CASE("packed weights kept on disk are verified: a flipped byte in the data or a layout is caught, "
          "said once and deleted; layouts are range-checked; only our own files are ever removed") {
  REQUIRE_SHARED(model_dir, "fixtures/A/models/tiny-sd15-inpaint");
  const TinyUnet t = tiny_unet(model_dir, "packed-cache-verified");
  const fs::path& d = t.dir;
  const ModelSource& model = t.model;
  const at::Tensor &x = t.x, &ctx = t.ctx;
  const fs::path& file = t.file;
  at::NoGradGuard no_grad;
  PackedSlots first;
  const at::Tensor in_memory = load_unet(model, &first)->forward({}, x, 981, ctx);

  // A flipped byte in the data section, and one in a layout in the header: each time the
  // file still parses, is refused, deleted, and the weights are packed again.
  for (const std::string where : {"data", "layout"}) {
    CAPTURE(where);
    REQUIRE(write_packed_cache(file, first, {}));
    if (where == "data") flip_byte(file, -100, '\x55');
    else flip_byte(file, offset_of(file, "\"layout:") + 40, 'f');
    CHECK_NOTHROW(SafetensorsFile::open(file));
    PackedSlots again;
    const auto unet = load_unet(model, &again);
    CHECK(use_packed_cache(file, again, {}) == 0);
    CHECK_FALSE(fs::exists(file));
    CHECK(at::equal(unet->forward({}, x, 981, ctx), in_memory));
    CHECK(packed_in_memory(again));
  }

  // A file whose data is not aligned for the kernels (written by an older version), its
  // checksum right: refused, deleted and packed again.
  REQUIRE(write_packed_cache(file, first, {}));
  shift_data(file);
  REQUIRE(SafetensorsFile::open(file)->verify_checksum() == SafetensorsFile::Checksum::ok);
  {
    PackedSlots again;
    const auto unet = load_unet(model, &again);
    CHECK(use_packed_cache(file, again, {}) == 0);
    CHECK_FALSE(fs::exists(file));
    CHECK(at::equal(unet->forward({}, x, 981, ctx), in_memory));
  }

  // Layouts are range-checked field by field (with the checksum right, a bad one must
  // still never reach oneDNN: a zero block size divided by zero there).
  at::Tensor data;
  std::string layout;
  for (const auto& [name, slot] : first)
    if (packed_contents(*slot, data, layout)) break;
  const auto desc = weight_layout_from_bytes(layout);
  REQUIRE(desc);
  const onednn::Layout good = onednn::layout_of(*desc);
  CHECK(plausible_weight_layout(good));
  onednn::Layout bad = good;
  if (bad.kind == onednn::Layout::Kind::blocked) bad.inner_blks = {0}, bad.inner_idxs = {0};
  else bad.oc_block = 0;
  CHECK_FALSE(plausible_weight_layout(bad));
  bad = good;
  bad.dims[0] = -3;
  CHECK_FALSE(plausible_weight_layout(bad));
  bad = good;
  bad.f32 = bad.bf16 = false;
  CHECK_FALSE(plausible_weight_layout(bad));
  CHECK_FALSE(weight_layout_from_bytes(layout.substr(1)));

  // Partial files of processes that died (kill -9 during a write) go at the next use;
  // a live process's, a fresh one's and files that are not ours stay.
  REQUIRE(write_packed_cache(file, first, {}));
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(1);
  const fs::path dead = file.string() + ".999999999.partial", live = file.string() + "." + std::to_string(getppid()) + ".partial",
                 fresh = file.string() + ".999999998.partial";
  for (const fs::path& p : {dead, live, fresh, d / "notes.partial", d / "notes.txt"}) std::ofstream(p) << "x";
  for (const fs::path& p : {dead, live, d / "notes.partial", d / "notes.txt"}) fs::last_write_time(p, old);
  PackedSlots third;
  const auto unet = load_unet(model, &third);
  CHECK(use_packed_cache(file, third, {}) > 0);
  CHECK_FALSE(fs::exists(dead));
  for (const fs::path& p : {live, fresh, d / "notes.partial", d / "notes.txt"}) CHECK(fs::exists(p));

  // Pruning counts and removes only the cache's own files.
  REQUIRE(write_packed_cache(file, first, {}, /*keep=*/0));
  CHECK_FALSE(fs::exists(file));
  CHECK(fs::exists(d / "notes.txt"));
  CHECK(is_packed_cache_name(file.filename().string()));
  CHECK_FALSE(is_packed_cache_name("notes.txt"));
  CHECK_FALSE(is_packed_cache_name("unet-0123456789abcdeg.safetensors"));
}
