// safetensors files: a memory-mapped, fully validated reader and a streaming writer.
// No libtorch here (the header parser is also the fuzz target); engine/weights.h turns
// tensors into zero-copy at::Tensor views.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace inpaint {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType);          // "F32", as written in the header
size_t dtype_size(DType);               // bytes per element
bool parse_dtype(const std::string& name, DType* out);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range relative to the data section
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// A parsed and validated safetensors image (a mapped file, or bytes in memory).
class SafetensorsFile {
 public:
  // Maps the file read-only; throws Error naming the file and the problem.
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  // Validates a buffer the caller keeps alive (used by the fuzz target and tests).
  static std::shared_ptr<SafetensorsFile> from_memory(const uint8_t* data, size_t size,
                                                      const std::string& label);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& label() const { return label_; }  // the file path, for messages
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  const uint8_t* data(const TensorInfo& t) const { return data_ + t.begin; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t file_size() const { return size_; }
  // Whether p points into this file's image.
  bool contains(const void* p) const {
    return static_cast<const uint8_t*>(p) >= base_ && static_cast<const uint8_t*>(p) < base_ + size_;
  }

  // Files we write for ourselves (the caches) carry a checksum of their header and data
  // (SafetensorsWriter's `checksum`): absent in any other file, ok, or mismatch (damaged).
  // Reads every byte, the chunks on `threads` threads; with `release_pages` each chunk's
  // pages leave the process after it is read (streamed weights, engine/memory_plan.h).
  enum class Checksum { absent, ok, mismatch };
  Checksum verify_checksum(bool release_pages = false, int threads = 1) const;
  // The header's part of it alone (no data read): ok where the checksum has a digest of
  // its own for the header (files written since the digests were per chunk) and that
  // matches; absent without a checksum; otherwise mismatch (verify_checksum decides then).
  Checksum verify_header_checksum() const;

  // This mapping's pages in memory now, and how many of those bytes the kernel maps with
  // 2 MB entries (large page-cache folios): /proc/self/smaps' Rss and FilePmdMapped.
  // Zeros when the file is not mapped or the kernel does not say.
  struct MappedBytes {
    double resident = 0, in_2mb_pages = 0;
    double share_in_2mb_pages() const { return resident > 0 ? in_2mb_pages / resident : 0; }
  };
  MappedBytes mapped_bytes() const;

 private:
  SafetensorsFile() = default;
  void parse();

  std::string label_;
  const uint8_t* base_ = nullptr;  // whole image
  const uint8_t* data_ = nullptr;  // data section
  size_t header_len_ = 0;
  size_t size_ = 0;
  bool mapped_ = false;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Drops the pages of [data, data + size) from this process's memory when the range lies
// in a mapped safetensors file (they stay in the page cache and are read again on the
// next touch); does nothing for any other memory. Streaming weights use it after each layer.
void release_mapped_pages(const void* data, size_t size);

// Writes a file tensor by tensor in the order given, so a 2 GB model never has to be
// in memory at once. Data goes to "<path>.<pid>.partial" (engine/own_files.h), renamed
// on finish(): a failed or interrupted write never leaves a file under the final name.
class SafetensorsWriter {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  // With `checksum`, the header's metadata gets kChecksumKey, filled in by finish():
  // XXH3-64 of the header (with that value as zeros), then of each kChecksumChunk bytes
  // of the data, 16 hex digits each, so that a reader checks the chunks in parallel.
  SafetensorsWriter(const std::filesystem::path& path, std::vector<Entry> entries,
                    const std::map<std::string, std::string>& metadata = {}, bool checksum = false);
  ~SafetensorsWriter();  // removes the partial file if finish() was not reached
  // Appends the bytes of the next tensor in order; nbytes must match its shape and dtype.
  void write_next(const std::string& name, const void* bytes, size_t nbytes);
  void finish();

 private:
  std::filesystem::path path_, partial_;
  std::vector<Entry> entries_;
  size_t next_ = 0;
  std::FILE* file_ = nullptr;
  // Bytes go out in whole blocks of kWriteBlock, each at a multiple of it in the file (see
  // put()); the last, partial one at finish().
  std::vector<uint8_t> block_;
  size_t in_block_ = 0;
  void put(const void* bytes, size_t n);
  void write_block();
  struct Hash;
  std::unique_ptr<Hash> hash_;  // with a checksum
  long checksum_at_ = 0;        // file offset of its value
  size_t chunks_ = 0;           // data chunks it has a digest for
};

// The metadata key of the checksum SafetensorsWriter writes. Files written before the
// chunks (one digest of header and data together) are still read.
constexpr const char* kChecksumKey = "inpaint_xxh3";
constexpr size_t kChecksumChunk = size_t(64) << 20;
constexpr size_t kWriteBlock = size_t(8) << 20;
constexpr size_t kDataAlignment = 64;  // where SafetensorsWriter puts the first tensor's data

}  // namespace inpaint
