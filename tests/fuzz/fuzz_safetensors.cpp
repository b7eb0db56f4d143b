// libFuzzer target: the safetensors header parser must reject or accept any bytes
// without crashing, and every range it accepts must lie inside the buffer.
#include <cstddef>
#include <cstdint>

#include "engine/error.h"
#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = inpaint::SafetensorsFile::from_memory(data, size, "fuzz-input");
    volatile uint8_t sink = 0;
    for (const auto& t : file->tensors())
      if (t.nbytes() > 0) sink ^= file->data(t)[0] ^ file->data(t)[t.nbytes() - 1];
    (void)sink;
  } catch (const inpaint::Error&) {
  }
  return 0;
}
