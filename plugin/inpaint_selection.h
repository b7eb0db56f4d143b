// Inpaint Selection: the selection of `drawable` becomes a new layer above it, repainted
// by the engine region by region. Nothing in the image changes unless this succeeds.
#pragma once
#include <cstdint>
#include <string>

#include "plugin/settings.h"

namespace inpaint::plugin {

// Returns the new layer; throws inpaint::Error with a message for the user.
int32_t inpaint_selection(int32_t image, int32_t drawable, const Settings& settings);

}  // namespace inpaint::plugin
