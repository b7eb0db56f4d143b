// The engine's messages as GIMP shows them: the CLI's option names (--steps) become the
// dialog's labels (Steps), which is what a GIMP user sees and can change. No GIMP here.
#pragma once
#include <string>

namespace inpaint {

std::string gimp_message(std::string engine_message);

}  // namespace inpaint
