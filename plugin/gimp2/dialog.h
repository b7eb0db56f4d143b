// The Inpaint Selection dialog (interactive runs). Returns false on Cancel.
#pragma once
#include "plugin/core/settings.h"

namespace inpaint::plugin {

bool show_dialog(Settings& settings);

}  // namespace inpaint::plugin
