#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "engine/weights.h"
#include "tests/test_support.h"

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
