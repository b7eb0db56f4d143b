#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "engine/weights.h"
#include "engine/xxh3_avx2.h"
#include "tests/test_support.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace fs = std::filesystem;
using namespace inpaint;

namespace {

// A file with the given header text and `data_bytes` zero bytes of data.
fs::path raw_file(const fs::path& dir, const std::string& name, const std::string& header,
                  size_t data_bytes, int64_t claimed_len = -1) {
  const fs::path p = dir / name;
  std::ofstream out(p, std::ios::binary);
  const uint64_t len = claimed_len >= 0 ? claimed_len : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(len >> (8 * i)));
  out << header << std::string(data_bytes, '\0');
  return p;
}

std::string error_of(const fs::path& p) {
  try {
    SafetensorsFile::open(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors: every dtype survives a write/read round trip, zero-copy") {
  const fs::path dir = test::temp_dir("st-roundtrip");
  const std::vector<at::ScalarType> types = {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble,
                                             at::kChar, at::kByte, at::kInt, at::kLong,
                                             at::kShort, at::kBool};
  std::vector<at::Tensor> values;
  std::vector<SafetensorsWriter::Entry> entries;
  for (size_t i = 0; i < types.size(); ++i) {
    at::Tensor t = (at::randn({3, 5}) * 50).to(types[i]);
    values.push_back(t);
    entries.push_back({"t" + std::to_string(i), dtype_of(types[i]), {3, 5}});
  }
  entries.push_back({"empty", DType::F32, {0, 4}});
  {
    SafetensorsWriter w(dir / "all.safetensors", entries, {{"note", "hello"}});
    for (size_t i = 0; i < types.size(); ++i)
      w.write_next(entries[i].name, values[i].data_ptr(), values[i].nbytes());
    w.write_next("empty", nullptr, 0);
    w.finish();
  }
  CHECK_FALSE(fs::exists(dir / "all.safetensors.partial"));
  auto file = SafetensorsFile::open(dir / "all.safetensors");
  CHECK(file->metadata().at("note") == "hello");
  const TensorMap map = tensors_of(file);
  for (size_t i = 0; i < types.size(); ++i) {
    const at::Tensor back = view_of(map.at("t" + std::to_string(i)));
    CHECK((back.scalar_type() == types[i]));
    CHECK(back.equal(values[i]));
    // A view into the mapping, not a copy.
    const void* mapped = file->data(*file->find("t" + std::to_string(i)));
    CHECK(back.data_ptr() == mapped);
  }
  CHECK(view_of(map.at("empty")).numel() == 0);
}

TEST_CASE("safetensors writer: the data starts at a multiple of 64 bytes, whatever the header's length") {
  const fs::path dir = test::temp_dir("st-aligned");
  // Headers of every length modulo 64, in steps of 8 (the format's own alignment).
  for (size_t extra = 0; extra < 64; extra += 8) {
    CAPTURE(extra);
    const std::vector<SafetensorsWriter::Entry> entries{{"a", DType::F32, {3}}, {"b", DType::U8, {5}}};
    SafetensorsWriter w(dir / "x.st", entries, {{"note", std::string(extra + 1, 'n')}});
    const float a[3] = {1, 2, 3};
    const uint8_t b[5] = {1, 2, 3, 4, 5};
    w.write_next("a", a, sizeof a);
    w.write_next("b", b, sizeof b);
    w.finish();
    const auto file = SafetensorsFile::open(dir / "x.st");
    CHECK(reinterpret_cast<uintptr_t>(file->data(*file->find("a"))) % kDataAlignment == 0);
    CHECK(std::memcmp(file->data(*file->find("b")), b, sizeof b) == 0);
  }
}

TEST_CASE("safetensors: an unfinished write leaves no file under the final name") {
  const fs::path dir = test::temp_dir("st-partial");
  {
    SafetensorsWriter w(dir / "x.safetensors", {{"a", DType::F32, {2}}});
    float v[2] = {1, 2};
    CHECK_THROWS_AS(w.write_next("a", v, 4), Error);  // wrong size
  }
  CHECK_FALSE(fs::exists(dir / "x.safetensors"));
  CHECK_FALSE(fs::exists(dir / "x.safetensors.partial"));
}

TEST_CASE("safetensors: every malformed header is one clear error naming file and tensor") {
  const fs::path d = test::temp_dir("st-bad");
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK(error_of(raw_file(d, "ok.st", ok, 8)).empty());

  struct Case {
    const char* name;
    std::string header;
    size_t data;
    int64_t claimed;
    const char* expect;
  } cases[] = {
      {"empty-header", "", 0, -1, "not valid JSON"},
      {"header-too-long", ok, 8, 1 << 20, "header length"},
      {"huge-header", ok, 8, int64_t(1) << 40, "100 MB"},
      {"not-json", "{\"w\": [", 8, -1, "not valid JSON"},
      {"not-object", "[1,2]", 8, -1, "not a JSON object"},
      {"unknown-dtype", R"({"w":{"dtype":"F8","shape":[2],"data_offsets":[0,8]}})", 8, -1, "unknown dtype"},
      {"no-shape", R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8, -1, "missing 'shape'"},
      {"negative-shape", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, -1, "negative"},
      {"size-mismatch", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, -1, "need 12 bytes"},
      {"outside", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, -1, "outside the data section"},
      {"reversed", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8, -1, "end before"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, -1, "overlaps"},
      {"bad-offsets", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, -1, "data_offsets"},
      {"bad-metadata", R"({"__metadata__":{"k":1}})", 0, -1, "__metadata__"},
      {"overflow", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", 8, -1, "too large"},
  };
  for (const auto& c : cases) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    const fs::path p = raw_file(d, case_name + ".st", c.header, c.data, c.claimed);
    const std::string err = error_of(p);
    CAPTURE(err);
    CHECK(err.find(p.string()) != std::string::npos);
    CHECK(err.find(c.expect) != std::string::npos);
  }
  std::ofstream(d / "tiny.st") << "abc";
  CHECK(error_of(d / "tiny.st").find("truncated") != std::string::npos);
  // The tensor is named where one is at fault.
  CHECK(error_of(d / "unknown-dtype.st").find("tensor 'w'") != std::string::npos);
  CHECK(error_of(d / "does-not-exist.st").find("cannot open") != std::string::npos);
}

TEST_CASE("safetensors: __metadata__ is tolerated and read") {
  const fs::path d = test::temp_dir("st-meta");
  auto f = SafetensorsFile::open(raw_file(
      d, "m.st", R"({"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}})", 4));
  CHECK(f->metadata().at("format") == "pt");
  REQUIRE(f->tensors().size() == 1);
  CHECK(f->tensors()[0].dtype == DType::BF16);
}

namespace {
// Writes `sizes` bytes tensors (bytes i * 7 + t), with the writer's checksum.
fs::path checksummed(const fs::path& dir, const std::string& name, const std::vector<size_t>& sizes) {
  std::vector<SafetensorsWriter::Entry> entries;
  for (size_t t = 0; t < sizes.size(); ++t) entries.push_back({"t" + std::to_string(t), DType::U8, {int64_t(sizes[t])}});
  SafetensorsWriter w(dir / name, entries, {{"written_by", "test"}}, /*checksum=*/true);
  for (size_t t = 0; t < sizes.size(); ++t) {
    std::vector<uint8_t> bytes(sizes[t]);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + t);
    w.write_next(entries[t].name, bytes.data(), bytes.size());
  }
  w.finish();
  return dir / name;
}

void flip(const fs::path& file, std::streamoff at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  const char c = char(f.get());
  f.seekp(at);
  f.put(char(c ^ 0x10));
}

SafetensorsFile::Checksum checked(const fs::path& file, int threads) {
  return SafetensorsFile::open(file)->verify_checksum(false, threads);
}
}  // namespace

TEST_CASE("safetensors checksum: one digest per 64 MiB chunk, checked on several threads; a flipped byte "
          "in any chunk or in the header is caught; an empty data section and older one-digest files too") {
  using C = SafetensorsFile::Checksum;
  const fs::path d = test::temp_dir("st-checksum");
  // Three chunks, the writes crossing their boundaries: 40 + 40 + 50 MiB and 100 bytes.
  const size_t mib = size_t(1) << 20;
  const fs::path big = checksummed(d, "big.st", {40 * mib, 40 * mib, 50 * mib + 100});
  const auto file = SafetensorsFile::open(big);
  CHECK(file->metadata().at(kChecksumKey).size() == 16 * (1 + 3));
  const std::streamoff data_at = std::streamoff(fs::file_size(big) - (130 * mib + 100));
  for (int threads : {1, 2, 3}) CHECK(checked(big, threads) == C::ok);
  CHECK(file->verify_header_checksum() == C::ok);
  // A byte of each chunk in turn, flipped and put back: the header's digest alone still
  // matches (the LoRA cache checks the data later, engine/read_checks.h).
  for (const std::streamoff at : {data_at + 5, data_at + std::streamoff(64 * mib) + 3, std::streamoff(fs::file_size(big)) - 1}) {
    CAPTURE(at);
    flip(big, at);
    for (int threads : {1, 2}) CHECK(checked(big, threads) != C::ok);
    CHECK(SafetensorsFile::open(big)->verify_header_checksum() == C::ok);
    flip(big, at);
    CHECK(checked(big, 2) == C::ok);
  }
  const std::string text = [&] {
    std::ifstream in(big, std::ios::binary);
    std::string s(size_t(data_at), '\0');
    in.read(s.data(), data_at);
    return s;
  }();
  flip(big, std::streamoff(text.find("\"test\"") + 2));  // a metadata value in the header
  CHECK(checked(big, 2) == C::mismatch);
  CHECK(SafetensorsFile::open(big)->verify_header_checksum() == C::mismatch);

  // No data: a header digest and the empty chunk's.
  const fs::path empty = checksummed(d, "empty.st", {0});
  CHECK(SafetensorsFile::open(empty)->metadata().at(kChecksumKey).size() == 32);
  CHECK(checked(empty, 2) == C::ok);

  // An older file: one XXH3-64 of the length, the header (its value as zeros) and the data.
  const std::string zeros(16, '0');
  std::string header = R"({"__metadata__":{"inpaint_xxh3":")" + zeros + R"("},"w":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})";
  std::string image(8, '\0');
  for (int i = 0; i < 8; ++i) image[i] = char(uint64_t(header.size()) >> (8 * i));
  image += header + "abc";
  char sum[17];
  std::snprintf(sum, sizeof sum, "%016llx", (unsigned long long)XXH3_64bits(image.data(), image.size()));
  image.replace(image.find(zeros), 16, sum);
  std::ofstream(d / "old.st", std::ios::binary) << image;
  CHECK(checked(d / "old.st", 2) == C::ok);
  CHECK(SafetensorsFile::open(d / "old.st")->verify_header_checksum() == C::mismatch);  // no digest of its own
  flip(d / "old.st", std::streamoff(image.size() - 2));
  CHECK(checked(d / "old.st", 2) == C::mismatch);
  // Absent in files we did not write.
  const std::string plain = R"({"w":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})";
  CHECK(checked(raw_file(d, "plain.st", plain, 3), 2) == C::absent);
  CHECK(SafetensorsFile::open(d / "plain.st")->verify_header_checksum() == C::absent);
}

TEST_CASE("safetensors checksum: XXH3 built for AVX2 gives the baseline build's digests, fed whole or in pieces") {
  if (!__builtin_cpu_supports("avx2")) {
    MESSAGE("no AVX2 here: the checksums use the baseline build only");
    return;
  }
  // Past 240 bytes XXH3 runs its vector code; its stripes are 64 bytes, its blocks 1 KB.
  std::string data(size_t(1) << 20 | 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = char(i * 2654435761u >> 13);
  for (const size_t size : {size_t(0), size_t(1), size_t(240), size_t(241), size_t(1024), size_t(5000), data.size()})
    for (const size_t piece : {size_t(7), size_t(4096), std::max<size_t>(size, 1)}) {
      CAPTURE(size);
      CAPTURE(piece);
      CHECK(xxh3_streamed_avx2(data.data(), size, piece) == XXH3_64bits(data.data(), size));
    }
}

namespace {
// The share of a file's mapped bytes the kernel maps with 2 MB entries, all read first.
double share_in_2mb_pages(const fs::path& path) {
  const auto file = SafetensorsFile::open(path);
  REQUIRE(file->verify_checksum() == SafetensorsFile::Checksum::ok);  // reads every page
  return file->mapped_bytes().share_in_2mb_pages();
}
}  // namespace

TEST_CASE("safetensors writer: written in aligned 8 MiB blocks, the file is mapped with 2 MB entries where "
          "the kernel keeps large page-cache folios") {
  const fs::path d = test::temp_dir("st-blocks");
  const size_t mib = size_t(1) << 20;
  // Tensors of odd sizes, as a packed UNet's: each written by itself, no write would
  // start on a 2 MB boundary.
  std::vector<size_t> sizes;
  for (int i = 0; i < 24; ++i) sizes.push_back(mib + 4096 * 37 * size_t(i) + 64 * 3);
  const fs::path ours = checksummed(d, "ours.st", sizes);
  // The same bytes written by whole aligned blocks of 8 MiB: what this kernel and file
  // system make of the best case (no large folios before Linux 6.16 on ext4).
  const fs::path best = d / "best.st";
  {
    std::ifstream in(ours, std::ios::binary);
    std::FILE* out = std::fopen(best.c_str(), "wb");
    REQUIRE(out);
    std::setvbuf(out, nullptr, _IONBF, 0);
    std::vector<char> block(8 * mib);
    while (in.read(block.data(), std::streamsize(block.size())) || in.gcount() > 0)
      REQUIRE(std::fwrite(block.data(), 1, size_t(in.gcount()), out) == size_t(in.gcount()));
    std::fclose(out);
  }
  const double best_share = share_in_2mb_pages(best), our_share = share_in_2mb_pages(ours);
  MESSAGE("2 MB entries: " << our_share << " of the writer's file, " << best_share << " of aligned blocks'");
  if (best_share < 0.9) {
    MESSAGE("skipped: this kernel or file system keeps no 2 MB page-cache folios here");
    return;
  }
  CHECK(our_share >= 0.9);
}

TEST_CASE("safetensors: a mapping's resident bytes and those in 2 MB pages, as the kernel reports them") {
  const fs::path d = test::temp_dir("st-mapped");
  const size_t mib = size_t(1) << 20;
  const fs::path path = checksummed(d, "m.st", {8 * mib});
  const auto file = SafetensorsFile::open(path);
  REQUIRE(file->verify_checksum() == SafetensorsFile::Checksum::ok);  // reads every page
  const SafetensorsFile::MappedBytes read = file->mapped_bytes();
  CHECK(read.resident >= double(8 * mib));
  CHECK(read.resident <= double(fs::file_size(path) + 4096));
  CHECK(read.in_2mb_pages <= read.resident);
  release_mapped_pages(file->data(file->tensors()[0]), 8 * mib);
  CHECK(file->mapped_bytes().resident < double(mib));  // the header's page may stay
  // Memory that is not a mapped file: nothing to say.
  std::ifstream in(checksummed(d, "small.st", {16}), std::ios::binary);
  const std::string image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto copy = SafetensorsFile::from_memory(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "copy");
  CHECK(copy->mapped_bytes().resident == 0);
}
