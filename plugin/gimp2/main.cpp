// The GIMP 2.10 plug-in: registers plug-in-inpaint under Filters > Inpaint and runs it.
#include <libgimp/gimp.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "plugin/core/inpaint_selection.h"
#include "plugin/core/settings.h"
#include "plugin/gimp2/dialog.h"

using namespace inpaint::plugin;

namespace {

GimpPDBArgType pdb_type(ArgType t) {
  switch (t) {
    case ArgType::Int:
    case ArgType::Boolean: return GIMP_PDB_INT32;
    case ArgType::Double: return GIMP_PDB_FLOAT;
    case ArgType::Text:
    case ArgType::Choice: return GIMP_PDB_STRING;
  }
  return GIMP_PDB_INT32;
}

// run-mode, image, drawable, then the table's GIMP 2.10 arguments.
constexpr int kFixed = 3;
int parameter_count() {
  return kFixed + int(std::count_if(std::begin(kArguments), std::end(kArguments), [](const Argument& a) { return a.gimp2; }));
}

void query() {
  static std::vector<GimpParamDef> args = {
      {GIMP_PDB_INT32, const_cast<gchar*>("run-mode"),
       const_cast<gchar*>("The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1), RUN-WITH-LAST-VALS (2) }")},
      {GIMP_PDB_IMAGE, const_cast<gchar*>("image"), const_cast<gchar*>("Input image")},
      {GIMP_PDB_DRAWABLE, const_cast<gchar*>("drawable"), const_cast<gchar*>("Input drawable (its selected area is repainted)")}};
  for (const Argument& a : kArguments)
    if (a.gimp2) args.push_back({pdb_type(a.type), const_cast<gchar*>(a.name), const_cast<gchar*>(a.description)});
  static GimpParamDef results[] = {{GIMP_PDB_LAYER, const_cast<gchar*>("layer"), const_cast<gchar*>("The new layer")}};
  gimp_install_procedure(kProcedure, kBlurb, kHelp, "inpaint developers", "inpaint developers", "2026", kMenuLabel,
                         "RGB*, GRAY*", GIMP_PLUGIN, gint(args.size()), 1, args.data(), results);
  gimp_plugin_menu_register(kProcedure, kMenuPath);
}

// Script calls: every parameter from the PDB; what the dialog has beyond them from the
// environment (INPAINT_MAX_MEMORY, INPAINT_LORAS, INPAINT_VAE, INPAINT_PRECISION), the rest at
// its defaults.
Settings from_params(const GimpParam* p) {
  Settings s;
  int i = kFixed;
  for (const Argument& a : kArguments) {
    if (!a.gimp2) continue;
    const GimpParam& v = p[i++];
    switch (a.type) {
      case ArgType::Text:
      case ArgType::Choice: assign_text(s, a.name, v.data.d_string); break;
      case ArgType::Double: assign_number(s, a.name, v.data.d_float); break;
      case ArgType::Int:
      case ArgType::Boolean: assign_number(s, a.name, v.data.d_int32); break;
    }
  }
  for (const auto& [variable, argument] : {std::pair{"INPAINT_MAX_MEMORY", "max-memory"}, std::pair{"INPAINT_LORAS", "lora"},
                                           std::pair{"INPAINT_VAE", "vae"}, std::pair{"INPAINT_PRECISION", "precision"}})
    if (const char* value = std::getenv(variable)) assign_text(s, argument, value);
  return s;
}

bool load_settings(Settings& s) {
  if (gimp_get_data_size(kProcedure) != static_cast<gint>(sizeof s)) return false;  // none, or an older layout
  return gimp_get_data(kProcedure, &s);
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
  if (load_settings(s)) sanitize(s);  // the last run's: checked, not trusted
  if (mode == GIMP_RUN_INTERACTIVE) {
    if (!show_dialog(s)) {
      values[0].data.d_status = GIMP_PDB_CANCEL;
      return;
    }
    gimp_set_data(kProcedure, &s, sizeof s);
  } else if (mode == GIMP_RUN_NONINTERACTIVE) {
    if (nparams != parameter_count())
      return fail(GIMP_PDB_CALLING_ERROR, std::string(kProcedure) + " takes " + std::to_string(parameter_count()) +
                                              " parameters, got " + std::to_string(nparams));
    s = from_params(params);
  }  // GIMP_RUN_WITH_LAST_VALS: the saved settings (only run-mode, image, drawable are given)
  const Outcome result = run_inpaint_selection(image, drawable, s);
  switch (result.status) {
    case Outcome::Done:
      values[0].data.d_status = GIMP_PDB_SUCCESS;
      values[1].type = GIMP_PDB_LAYER;
      values[1].data.d_layer = result.layer;
      *nreturn = 2;
      if (mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
      break;
    case Outcome::Cancelled: values[0].data.d_status = GIMP_PDB_CANCEL; break;
    case Outcome::Failed: fail(GIMP_PDB_EXECUTION_ERROR, result.message); break;
  }
}

const GimpPlugInInfo PLUG_IN_INFO = {nullptr, nullptr, query, run};

}  // namespace

MAIN()
