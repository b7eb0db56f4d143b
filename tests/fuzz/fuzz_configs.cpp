// libFuzzer target: config.json text, as the networks read it (Python-style JSON, then
// every field checked): any bytes are accepted or refused with an Error, never a crash,
// a hang or a runaway allocation.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/error.h"
#include "engine/json_file.h"
#include "models/network_configs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const nlohmann::json j = inpaint::parse_python_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    for (int k = 0; k < 3; ++k) {
      try {
        if (k == 0) inpaint::UNetConfig::from_json(j, "unet");
        if (k == 1) inpaint::VaeConfig::from_json(j, "vae");
        if (k == 2) inpaint::ClipTextConfig::from_json(j, "text_encoder");
      } catch (const inpaint::Error&) {
      }
    }
  } catch (const inpaint::Error&) {
  }
  return 0;
}
