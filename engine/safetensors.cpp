#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/own_files.h"

// Header-only: the fuzz target builds this file alone.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace inpaint {

void xxh3_update_avx2(XXH3_state_t* state, const void* data, size_t size);  // engine/xxh3_avx2.cpp

namespace {
// XXH3 over a checksum's data: with AVX2 where the processor has it (twice as fast).
void hash_update(XXH3_state_t* state, const void* data, size_t size) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2)
    xxh3_update_avx2(state, data, size);
  else
    XXH3_64bits_update(state, data, size);
}

// Mapped weight files (start -> length), so that release_mapped_pages never touches
// memory it does not own: MADV_DONTNEED on anonymous memory would zero it.
std::mutex g_mappings_mutex;
std::map<uintptr_t, size_t> g_mappings;

void register_mapping(const uint8_t* base, size_t size) {
  std::lock_guard<std::mutex> lock(g_mappings_mutex);
  g_mappings[reinterpret_cast<uintptr_t>(base)] = size;
}

void unregister_mapping(const uint8_t* base) {
  std::lock_guard<std::mutex> lock(g_mappings_mutex);
  g_mappings.erase(reinterpret_cast<uintptr_t>(base));
}
}  // namespace
namespace {

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1}};

// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeader = 100u << 20;

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw Error(label + ": " + what);
}

// Tensors and metadata entries a header may have (an SDXL single file has ~2,600), and
// JSON values in all (each tensor has about ten).
constexpr size_t kMaxEntries = 100000, kMaxValues = 2000000;

// What a file that is not safetensors seems to be, for the message.
std::string looks_like(const uint8_t* p, size_t size) {
  auto starts = [&](const char* magic, size_t n) { return size >= n && std::memcmp(p, magic, n) == 0; };
  if (starts("\x89PNG", 4)) return ": it is a PNG image";
  if (starts("\xff\xd8\xff", 3)) return ": it is a JPEG image";
  if (starts("PK\x03\x04", 4)) return ": it is a zip archive (a PyTorch .ckpt? convert it to .safetensors)";
  if (starts("\x80", 1)) return ": it is a Python pickle (a PyTorch checkpoint? convert it to .safetensors)";
  if (starts("GGUF", 4)) return ": it is a GGUF file";
  return " (no JSON header after the 8-byte length)";
}

// Entries of the top-level object (its colons) and values in all (colons and commas),
// outside strings: what parsing the text would build, counted without building it.
void count_json_items(const uint8_t* text, size_t size, size_t* entries, size_t* values) {
  bool in_string = false;
  int depth = 0;
  for (size_t i = 0; i < size; ++i) {
    const uint8_t c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if (c == '}' || c == ']') --depth;
    else if (c == ':' || c == ',') {
      ++*values;
      if (c == ':' && depth == 1) ++*entries;
    }
  }
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

const char* dtype_name(DType d) {
  for (const auto& row : kDTypes)
    if (row.dtype == d) return row.name;
  return "?";
}

size_t dtype_size(DType d) {
  for (const auto& row : kDTypes)
    if (row.dtype == d) return row.size;
  return 0;
}

bool parse_dtype(const std::string& name, DType* out) {
  for (const auto& row : kDTypes)
    if (name == row.name) {
      *out = row.dtype;
      return true;
    }
  return false;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->label_ = path.string();
  // Non-blocking: opening a FIFO would otherwise wait for a writer for ever.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(file->label_, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(file->label_, "not a regular file");
  }
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ < 8) {
    ::close(fd);
    fail(file->label_, "truncated: " + std::to_string(file->size_) +
                           " bytes, a safetensors file has at least an 8-byte header length");
  }
  void* map = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(file->label_, std::string("cannot map: ") + std::strerror(errno));
  file->base_ = static_cast<const uint8_t*>(map);
  file->mapped_ = true;
  register_mapping(file->base_, file->size_);
  file->parse();
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::from_memory(const uint8_t* data, size_t size,
                                                              const std::string& label) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->label_ = label;
  file->base_ = data;
  file->size_ = size;
  if (size < 8) fail(label, "truncated: shorter than the 8-byte header length");
  file->parse();
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (!mapped_) return;
  unregister_mapping(base_);
  munmap(const_cast<uint8_t*>(base_), size_);
}

void release_mapped_pages(const void* data, size_t size) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data), end = begin + size;
  {
    std::lock_guard<std::mutex> lock(g_mappings_mutex);
    auto it = g_mappings.upper_bound(begin);
    if (it == g_mappings.begin()) return;
    --it;
    if (end > it->first + it->second) return;  // not (wholly) inside a weights file
  }
  // Whole pages only: a page shared with a neighbouring tensor is harmless to drop too,
  // but stay inside the range so nothing outside it is touched.
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

SafetensorsFile::MappedBytes SafetensorsFile::mapped_bytes() const {
  MappedBytes bytes;
  if (!mapped_) return bytes;
  std::ifstream smaps("/proc/self/smaps");
  char start[32];
  std::snprintf(start, sizeof start, "%08lx-", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(base_)));
  std::string line;
  while (std::getline(smaps, line) && line.rfind(start, 0) != 0) {
  }
  // The mapping's fields (in kB), up to the next mapping's line (which starts with its address).
  while (std::getline(smaps, line) && line.find(':') < line.find(' ')) {
    const size_t colon = line.find(':');
    const std::string key = line.substr(0, colon);
    if (key == "Rss") bytes.resident = 1024 * std::atof(line.c_str() + colon + 1);
    if (key == "FilePmdMapped") bytes.in_2mb_pages = 1024 * std::atof(line.c_str() + colon + 1);
  }
  return bytes;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::parse() {
  const uint64_t header_len = read_u64_le(base_);
  // An impossible length with no JSON after it: another kind of file, not a damaged one.
  const bool json_follows = size_ > 8 && (base_[8] == '{' || base_[8] == '[' || base_[8] == ' ');
  if ((header_len > kMaxHeader || header_len > size_ - 8) && !json_follows)
    fail(label_, "not a safetensors file" + looks_like(base_, size_));
  if (header_len > kMaxHeader)
    fail(label_, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  if (header_len > size_ - 8)
    fail(label_, "truncated: header length " + std::to_string(header_len) + " but only " +
                     std::to_string(size_ - 8) + " bytes follow");
  data_ = base_ + 8 + header_len;
  header_len_ = header_len;
  const uint64_t data_size = size_ - 8 - header_len;

  // The parse is bounded by what it would keep: a header of millions of entries is
  // refused after one linear scan of its bytes, before it costs gigabytes.
  size_t entries = 0, values = 0;
  count_json_items(base_ + 8, header_len, &entries, &values);
  if (entries > kMaxEntries)
    fail(label_, "header has more than " + std::to_string(kMaxEntries) + " entries (no real model has that many)");
  if (values > kMaxValues)
    fail(label_, "header has more than " + std::to_string(kMaxValues) + " values (no real model has that many)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base_ + 8, base_ + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    fail(label_, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(label_, "header is not a JSON object");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(label_, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail(label_, "__metadata__ value '" + k + "' is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = label_ + ": tensor '" + name + "': ";
    if (!entry.is_object()) throw Error(where + "entry is not an object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(key)) throw Error(where + "missing '" + key + "'");
    TensorInfo t;
    t.name = name;
    const auto& dt = entry["dtype"];
    if (!dt.is_string() || !parse_dtype(dt.get<std::string>(), &t.dtype))
      throw Error(where + "unknown dtype " + dt.dump());
    const auto& shape = entry["shape"];
    if (!shape.is_array()) throw Error(where + "shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) throw Error(where + "shape has a non-integer or negative entry");
      uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (v != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / v))
        throw Error(where + "shape is too large");
      numel *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& offs = entry["data_offsets"];
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
        !offs[1].is_number_unsigned())
      throw Error(where + "data_offsets is not a pair of non-negative integers");
    t.begin = offs[0].get<uint64_t>();
    t.end = offs[1].get<uint64_t>();
    if (t.end < t.begin) throw Error(where + "data_offsets end before they begin");
    if (t.end > data_size)
      throw Error(where + "data range [" + std::to_string(t.begin) + ", " +
                  std::to_string(t.end) + ") lies outside the data section of " +
                  std::to_string(data_size) + " bytes (truncated file?)");
    const uint64_t expected = numel * dtype_size(t.dtype);
    if (t.nbytes() != expected)
      throw Error(where + "shape and dtype need " + std::to_string(expected) +
                  " bytes but data_offsets give " + std::to_string(t.nbytes()));
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  // Ranges must not overlap (a lying header could alias two tensors).
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : tensors_)
    if (t.nbytes() > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      fail(label_, "tensor '" + by_offset[i]->name + "' overlaps tensor '" +
                       by_offset[i - 1]->name + "'");
}

namespace {
std::string checksum_field() { return std::string("\"") + kChecksumKey + "\":\""; }

std::string hex64(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}
}  // namespace

// The writer's digests: the header's, then one per kChecksumChunk bytes of data.
struct SafetensorsWriter::Hash {
  XXH3_state_t* state = XXH3_createState();
  size_t in_chunk = 0;  // bytes of the current chunk hashed so far
  std::string digests;
  Hash() { XXH3_64bits_reset(state); }
  ~Hash() { XXH3_freeState(state); }
  void add(const uint8_t* p, size_t n) {
    while (n > 0) {
      const size_t take = std::min(n, kChecksumChunk - in_chunk);
      hash_update(state, p, take);
      p += take, n -= take, in_chunk += take;
      if (in_chunk == kChecksumChunk) end_chunk();
    }
  }
  void end_chunk() {
    digests += hex64(XXH3_64bits_digest(state));
    XXH3_64bits_reset(state);
    in_chunk = 0;
  }
};

namespace {
size_t checksum_chunks(size_t data_size) { return std::max<size_t>(1, (data_size + kChecksumChunk - 1) / kChecksumChunk); }
}  // namespace

namespace {
// The header as written, its checksum's value back to zeros: what the header digest
// covers. Empty when the value is not found in it.
std::string header_as_written(const uint8_t* base, size_t header_len, const std::string& value) {
  std::string header(reinterpret_cast<const char*>(base + 8), header_len);
  const size_t at = header.find(checksum_field() + value + "\"");
  if (at == std::string::npos) return {};
  header.replace(at + checksum_field().size(), value.size(), std::string(value.size(), '0'));
  return header;
}
}  // namespace

SafetensorsFile::Checksum SafetensorsFile::verify_header_checksum() const {
  const auto kept = metadata_.find(kChecksumKey);
  if (kept == metadata_.end()) return Checksum::absent;
  const std::string& value = kept->second;
  const std::string header = header_as_written(base_, header_len_, value);
  if (header.empty() || value.size() != 16 * (1 + checksum_chunks(size_ - 8 - header_len_))) return Checksum::mismatch;
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, base_, 8);
  XXH3_64bits_update(state, header.data(), header.size());
  const bool ok = hex64(XXH3_64bits_digest(state)) == value.substr(0, 16);
  XXH3_freeState(state);
  return ok ? Checksum::ok : Checksum::mismatch;
}

SafetensorsFile::Checksum SafetensorsFile::verify_checksum(bool release_pages, int threads) const {
  const auto kept = metadata_.find(kChecksumKey);
  if (kept == metadata_.end()) return Checksum::absent;
  const std::string& value = kept->second;
  const size_t data_size = size_ - 8 - header_len_;
  auto hash_data = [&](XXH3_state_t* state, size_t begin, size_t end) {
    for (size_t done = begin; done < end; done += kChecksumChunk) {  // pages released as they go
      const size_t n = std::min(kChecksumChunk, end - done);
      hash_update(state, data_ + done, n);
      if (release_pages) release_mapped_pages(data_ + done, n);
    }
  };
  if (value.size() == 16) {  // an older file's: header and data as one digest, on one thread
    const std::string header = header_as_written(base_, header_len_, value);
    if (header.empty()) return Checksum::mismatch;
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    XXH3_64bits_update(state, base_, 8);
    XXH3_64bits_update(state, header.data(), header.size());
    hash_data(state, 0, data_size);
    const bool ok = hex64(XXH3_64bits_digest(state)) == value;
    XXH3_freeState(state);
    return ok ? Checksum::ok : Checksum::mismatch;
  }
  if (verify_header_checksum() != Checksum::ok) return Checksum::mismatch;
  const size_t chunks = checksum_chunks(data_size);
  // The chunks on all threads: a 1.7 GB file is 27 of them.
  std::atomic<size_t> next{0};
  std::atomic<bool> ok{true};
  auto work = [&] {
    XXH3_state_t* s = XXH3_createState();
    for (size_t i; ok && (i = next++) < chunks;) {
      XXH3_64bits_reset(s);
      const size_t begin = i * kChecksumChunk;
      hash_data(s, begin, std::min(begin + kChecksumChunk, data_size));
      if (hex64(XXH3_64bits_digest(s)) != value.substr(16 * (1 + i), 16)) ok = false;
    }
    XXH3_freeState(s);
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < std::min<int>(threads, int(chunks)); ++t) helpers.emplace_back(work);
  work();
  for (std::thread& h : helpers) h.join();
  return ok ? Checksum::ok : Checksum::mismatch;
}

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& path, std::vector<Entry> entries,
                                     const std::map<std::string, std::string>& metadata, bool checksum)
    : path_(path), partial_(partial_name(path)), entries_(std::move(entries)) {
  nlohmann::json header = nlohmann::json::object();
  std::map<std::string, std::string> meta = metadata;
  uint64_t offset = 0;
  for (const auto& e : entries_) {
    uint64_t n = dtype_size(e.dtype);
    for (int64_t d : e.shape) n *= static_cast<uint64_t>(d);
    header[e.name] = {{"dtype", dtype_name(e.dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  const std::string zeros(16 * (1 + checksum_chunks(offset)), '0');
  if (checksum) meta[kChecksumKey] = zeros;
  if (!meta.empty()) header["__metadata__"] = meta;
  std::string text = header.dump();
  // The data at a multiple of 64 bytes (each tensor then where its size keeps it): packed
  // weights are read from the mapping, and oneDNN's AMX kernels load them a cache line to
  // a tile row. Off by 24 bytes, every row spanned two lines: the bf16 UNet step 2.13 s
  // mapped against 1.48 s from an aligned copy.
  while ((text.size() + 8) % kDataAlignment != 0) text.push_back(' ');
  file_ = std::fopen(partial_.c_str(), "wb");
  if (!file_) throw Error(partial_.string() + ": cannot create: " + std::strerror(errno));
  std::setvbuf(file_, nullptr, _IONBF, 0);  // put() gathers the blocks
  block_.resize(kWriteBlock);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  put(len, 8);
  put(text.data(), text.size());
  if (checksum) {
    checksum_at_ = long(8 + text.find(checksum_field() + zeros) + checksum_field().size());
    hash_ = std::make_unique<Hash>();
    XXH3_64bits_update(hash_->state, len, 8);
    XXH3_64bits_update(hash_->state, text.data(), text.size());
    hash_->end_chunk();
    chunks_ = checksum_chunks(offset);
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_) {
    std::fclose(file_);
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
  }
}

// Whole blocks at multiples of 8 MiB: the page cache then holds the file in 2 MB folios,
// which the kernel maps with 2 MB entries where it can (Linux 6.16+ on ext4: 99.9 % of
// the packed UNet against 65 % when each tensor was written by itself), so oneDNN reads
// kept bf16 weights from the mapping as fast as from memory of our own (packed_cache.cpp).
void SafetensorsWriter::put(const void* bytes, size_t n) {
  const auto* p = static_cast<const uint8_t*>(bytes);
  while (n > 0) {
    const size_t take = std::min(n, block_.size() - in_block_);
    std::memcpy(block_.data() + in_block_, p, take);
    p += take, n -= take, in_block_ += take;
    if (in_block_ == block_.size()) write_block();
  }
}

void SafetensorsWriter::write_block() {
  if (in_block_ > 0 && std::fwrite(block_.data(), 1, in_block_, file_) != in_block_)
    throw Error(partial_.string() + ": write failed (disk full?): " + std::strerror(errno));
  in_block_ = 0;
}

void SafetensorsWriter::write_next(const std::string& name, const void* bytes, size_t nbytes) {
  if (next_ >= entries_.size() || entries_[next_].name != name)
    throw Error(path_.string() + ": tensor '" + name + "' written out of order");
  const Entry& e = entries_[next_];
  uint64_t expected = dtype_size(e.dtype);
  for (int64_t d : e.shape) expected *= static_cast<uint64_t>(d);
  if (nbytes != expected)
    throw Error(path_.string() + ": tensor '" + name + "' has " + std::to_string(nbytes) +
                " bytes, expected " + std::to_string(expected));
  put(bytes, nbytes);
  if (hash_) hash_->add(static_cast<const uint8_t*>(bytes), nbytes);
  ++next_;
}

void SafetensorsWriter::finish() {
  if (next_ != entries_.size())
    throw Error(path_.string() + ": " + std::to_string(entries_.size() - next_) +
                " tensors were not written");
  write_block();
  bool ok = true;
  if (hash_) {
    if (hash_->digests.size() < 16 * (1 + chunks_)) hash_->end_chunk();  // the last, shorter chunk (or an empty one)
    const std::string& sum = hash_->digests;
    ok = std::fseek(file_, checksum_at_, SEEK_SET) == 0 && std::fwrite(sum.data(), 1, sum.size(), file_) == sum.size();
  }
  ok = ok && std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  const int err = errno;
  std::fclose(file_);
  file_ = nullptr;
  if (!ok) {
    std::filesystem::remove(partial_);
    throw Error(partial_.string() + ": write failed (disk full?): " + std::strerror(err));
  }
  std::filesystem::rename(partial_, path_);
}

}  // namespace inpaint
