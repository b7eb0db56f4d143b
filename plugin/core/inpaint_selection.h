// Inpaint Selection: the selection of `drawable` becomes a new layer above it, repainted
// by the engine region by region. Nothing in the image changes unless this succeeds.
#pragma once
#include <cstdint>
#include <string>

#include "plugin/core/settings.h"

namespace inpaint::plugin {

// Returns the new layer; throws inpaint::Error with a message for the user.
int32_t inpaint_selection(int32_t image, int32_t drawable, const Settings& settings);

// The same for the plug-ins' run functions: never throws; a failure's message is the
// one GIMP shows (the dialog's labels, not the CLI's options).
struct Outcome {
  enum Status { Done, Cancelled, Failed } status;
  int32_t layer = -1;
  std::string message;
};
Outcome run_inpaint_selection(int32_t image, int32_t drawable, const Settings& settings);

}  // namespace inpaint::plugin
