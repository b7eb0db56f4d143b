// The GIMP 2.10 plug-in: registers plug-in-inpaint under Filters > Inpaint and runs it.
#include <libgimp/gimp.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/error.h"
#include "engine/pipeline.h"
#include "plugin/dialog.h"
#include "plugin/gimp_adapter.h"
#include "plugin/inpaint_selection.h"
#include "plugin/messages.h"
#include "plugin/settings.h"

using namespace inpaint::plugin;

namespace {

GimpPDBArgType pdb_type(ParamType t) {
  switch (t) {
    case ParamType::Int32: return GIMP_PDB_INT32;
    case ParamType::Float: return GIMP_PDB_FLOAT;
    case ParamType::String: return GIMP_PDB_STRING;
    case ParamType::Image: return GIMP_PDB_IMAGE;
    case ParamType::Drawable: return GIMP_PDB_DRAWABLE;
  }
  return GIMP_PDB_INT32;
}

void query() {
  static GimpParamDef args[kParamCount];
  for (int i = 0; i < kParamCount; ++i)
    args[i] = {pdb_type(kParams[i].type), const_cast<gchar*>(kParams[i].name), const_cast<gchar*>(kParams[i].description)};
  static GimpParamDef results[] = {{GIMP_PDB_LAYER, const_cast<gchar*>("layer"), const_cast<gchar*>("The new layer")}};
  gimp_install_procedure(kProcedure, "Repaint the selection with Stable Diffusion inpainting",
                         "Repaints the selected area of the active layer from a text prompt, on the CPU. "
                         "The result is a new layer above the active one, covering the selection, with the "
                         "selection (soft edges included) as its alpha. Pixels outside the selection never change.",
                         "inpaint developers", "inpaint developers", "2026", "Inpaint _Selection...",
                         "RGB*, GRAY*", GIMP_PLUGIN, kParamCount, 1, args, results);
  gimp_plugin_menu_register(kProcedure, "<Image>/Filters/Inpaint");
}

void copy_string(char* dst, size_t size, const gchar* src) {
  std::strncpy(dst, src ? src : "", size - 1);
  dst[size - 1] = '\0';
}

// Script calls: every parameter from the PDB; the advanced settings at their defaults
// (INPAINT_MAX_MEMORY, if set, limits memory as --max-memory does).
Settings from_params(const GimpParam* p) {
  Settings s;
  copy_string(s.prompt, sizeof s.prompt, p[3].data.d_string);
  copy_string(s.negative_prompt, sizeof s.negative_prompt, p[4].data.d_string);
  copy_string(s.model, sizeof s.model, p[5].data.d_string);
  s.steps = p[6].data.d_int32;
  s.guidance = p[7].data.d_float;
  s.strength = p[8].data.d_float;
  s.random_seed = p[9].data.d_int32 < 0;
  s.seed = static_cast<uint32_t>(std::max(0, p[9].data.d_int32));
  copy_string(s.scheduler, sizeof s.scheduler, p[10].data.d_string);
  s.context = p[11].data.d_int32;
  // What the dialog has beyond the PDB parameters, for scripts: from the environment.
  if (const char* m = std::getenv("INPAINT_MAX_MEMORY")) copy_string(s.max_memory, sizeof s.max_memory, m);
  if (const char* l = std::getenv("INPAINT_LORAS")) copy_string(s.loras, sizeof s.loras, l);
  if (const char* v = std::getenv("INPAINT_VAE"))  // as run --vae: full, taesd or a TAESD folder
    copy_string(s.taesd, sizeof s.taesd, std::string(v) == "full" ? "" : v);
  return s;
}

void run(const gchar*, gint nparams, const GimpParam* params, gint* nreturn, GimpParam** returned) {
  static GimpParam values[2];
  static std::string error;
  *nreturn = 1;
  *returned = values;
  values[0].type = GIMP_PDB_STATUS;
  auto fail = [&](GimpPDBStatusType status, const std::string& message) {
    error = message;
    values[0].data.d_status = status;
    values[1].type = GIMP_PDB_STRING;
    values[1].data.d_string = const_cast<gchar*>(error.c_str());
    *nreturn = 2;
  };
  gegl_init(nullptr, nullptr);
  const auto mode = static_cast<GimpRunMode>(params[0].data.d_int32);
  const gint32 image = params[1].data.d_image, drawable = params[2].data.d_drawable;
  Settings s;
  if (gimp::load_settings(kProcedure, &s, sizeof s)) sanitize(s);  // the last run's: checked, not trusted
  if (mode == GIMP_RUN_INTERACTIVE) {
    if (!show_dialog(s)) {
      values[0].data.d_status = GIMP_PDB_CANCEL;
      return;
    }
    gimp::save_settings(kProcedure, &s, sizeof s);
  } else if (mode == GIMP_RUN_NONINTERACTIVE) {
    if (nparams != kParamCount)
      return fail(GIMP_PDB_CALLING_ERROR, std::string(kProcedure) + " takes " + std::to_string(kParamCount) +
                                              " parameters, got " + std::to_string(nparams));
    s = from_params(params);
  }  // GIMP_RUN_WITH_LAST_VALS: the saved settings (only run-mode, image, drawable are given)
  try {
    const gint32 layer = inpaint_selection(image, drawable, s);
    values[0].data.d_status = GIMP_PDB_SUCCESS;
    values[1].type = GIMP_PDB_LAYER;
    values[1].data.d_layer = layer;
    *nreturn = 2;
    if (mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
  } catch (const inpaint::Cancelled&) {
    values[0].data.d_status = GIMP_PDB_CANCEL;
  } catch (const std::bad_alloc&) {
    fail(GIMP_PDB_EXECUTION_ERROR, "Inpaint ran out of memory: set a memory limit under Advanced, or a smaller working resolution.");
  } catch (const std::exception& e) {
    fail(GIMP_PDB_EXECUTION_ERROR, "Inpaint: " + inpaint::gimp_message(e.what()));
  }
}

const GimpPlugInInfo PLUG_IN_INFO = {nullptr, nullptr, query, run};

}  // namespace

MAIN()
