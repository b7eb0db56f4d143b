// libFuzzer target: what the packed cache reads back from disk. The input is a cache
// file's image: its header is parsed, its checksum verified, and every "layout:" entry
// decoded and range-checked; a layout that passes is handed to oneDNN, which must be
// able to compute its size (the check exists so that nothing reaching oneDNN divides by
// zero). Inputs of a descriptor's size are also tried as raw layout bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "models/kernels/packed_layout.h"

namespace {
void check_layout(const std::string& bytes) {
  if (const auto desc = inpaint::weight_layout_from_bytes(bytes)) {
    volatile size_t size = desc->get_size();
    (void)size;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_layout(std::string(reinterpret_cast<const char*>(data), size));
  try {
    auto file = inpaint::SafetensorsFile::from_memory(data, size, "fuzz-input");
    (void)file->verify_checksum();
    for (const auto& [key, value] : file->metadata()) {
      std::string bytes;
      if (key.rfind("layout:", 0) == 0 && inpaint::layout_from_hex(value, &bytes)) check_layout(bytes);
    }
  } catch (const inpaint::Error&) {
  }
  return 0;
}
