// The Inpaint Selection dialog on GIMP 3: a GimpProcedureDialog over the procedure's
// config (GIMP keeps the values between runs). Returns false on Cancel.
#pragma once
#include <libgimp/gimp.h>

namespace inpaint::plugin {

bool show_dialog(GimpProcedure* procedure, GimpProcedureConfig* config);

}  // namespace inpaint::plugin
