// The GIMP 3 plug-in: a GimpPlugIn with one image procedure, plug-in-inpaint, under
// Filters > Inpaint. Its arguments (names, ranges, defaults) come from the core's table
// (plugin/core/settings.h); GIMP keeps their last values in the procedure's config.
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include <sstream>
#include <string>
#include <vector>

#include "engine/schedulers/scheduler.h"
#include "plugin/core/inpaint_selection.h"
#include "plugin/core/settings.h"
#include "plugin/gimp3/dialog.h"

using namespace inpaint::plugin;

struct _InpaintPlugIn {
  GimpPlugIn parent_instance;
};
G_DECLARE_FINAL_TYPE(InpaintPlugIn, inpaint_plug_in, INPAINT, PLUG_IN, GimpPlugIn)
G_DEFINE_TYPE(InpaintPlugIn, inpaint_plug_in, GIMP_TYPE_PLUG_IN)

namespace {

// A choice argument's values: its own list, or (the scheduler) the model's own and then
// every scheduler the engine has.
GimpChoice* choice_of(const Argument& a) {
  GimpChoice* choice = gimp_choice_new();
  std::vector<std::string> values;
  std::istringstream words(a.choices);
  for (std::string w; words >> w;) values.push_back(w);
  int id = 0;
  if (values.empty()) {
    gimp_choice_add(choice, kModelScheduler, id++, "The model's own", nullptr);
    values = inpaint::scheduler_names();
  }
  for (const std::string& v : values) gimp_choice_add(choice, v.c_str(), id++, v.c_str(), nullptr);
  return choice;
}

void add_argument(GimpProcedure* p, const Argument& a) {
  constexpr GParamFlags rw = G_PARAM_READWRITE;
  switch (a.type) {
    case ArgType::Text: gimp_procedure_add_string_argument(p, a.name, a.label, a.description, a.text, rw); break;
    case ArgType::Int:
      gimp_procedure_add_int_argument(p, a.name, a.label, a.description, gint(a.min), gint(a.max), gint(a.number), rw);
      break;
    case ArgType::Double:
      gimp_procedure_add_double_argument(p, a.name, a.label, a.description, a.min, a.max, a.number, rw);
      break;
    case ArgType::Choice:
      gimp_procedure_add_choice_argument(p, a.name, a.label, a.description, choice_of(a), a.text, rw);
      break;
    case ArgType::Boolean: gimp_procedure_add_boolean_argument(p, a.name, a.label, a.description, a.number != 0, rw); break;
  }
}

// The config's values as the core's Settings.
Settings settings_of(GimpProcedureConfig* config) {
  Settings s;
  for (const Argument& a : kArguments) {
    switch (a.type) {
      case ArgType::Text:
      case ArgType::Choice: {
        gchar* text = nullptr;
        g_object_get(config, a.name, &text, nullptr);
        assign_text(s, a.name, text);
        g_free(text);
        break;
      }
      case ArgType::Int: {
        gint v = 0;
        g_object_get(config, a.name, &v, nullptr);
        assign_number(s, a.name, v);
        break;
      }
      case ArgType::Double: {
        gdouble v = 0;
        g_object_get(config, a.name, &v, nullptr);
        assign_number(s, a.name, v);
        break;
      }
      case ArgType::Boolean: {
        gboolean v = FALSE;
        g_object_get(config, a.name, &v, nullptr);
        assign_number(s, a.name, v ? 1 : 0);
        break;
      }
    }
  }
  return s;
}

GimpValueArray* fail(GimpProcedure* procedure, GimpPDBStatusType status, const std::string& message) {
  GError* error = g_error_new_literal(GIMP_PLUG_IN_ERROR, 0, message.c_str());
  return gimp_procedure_new_return_values(procedure, status, error);  // takes the error
}

GimpValueArray* run(GimpProcedure* procedure, GimpRunMode mode, GimpImage* image, GimpDrawable** drawables,
                    GimpProcedureConfig* config, gpointer) {
  gegl_init(nullptr, nullptr);
  int count = 0;
  while (drawables && drawables[count]) ++count;
  if (count != 1)
    return fail(procedure, GIMP_PDB_CALLING_ERROR,
                count == 0 ? "Inpaint: select the layer to repaint in the Layers dialog."
                           : "Inpaint: " + std::to_string(count) +
                                 " layers are selected; select only the one to repaint (Inpaint Selection adds one layer "
                                 "above it).");
  if (mode == GIMP_RUN_INTERACTIVE && !show_dialog(procedure, config))
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, nullptr);
  const Outcome result = run_inpaint_selection(gimp_image_get_id(image), gimp_item_get_id(GIMP_ITEM(drawables[0])),
                                               settings_of(config));
  switch (result.status) {
    case Outcome::Done: break;
    case Outcome::Cancelled: return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, nullptr);
    case Outcome::Failed: return fail(procedure, GIMP_PDB_EXECUTION_ERROR, result.message);
  }
  if (mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
  GimpValueArray* values = gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, nullptr);
  GIMP_VALUES_SET_LAYER(values, 1, gimp_layer_get_by_id(result.layer));
  return values;
}

GList* query_procedures(GimpPlugIn*) { return g_list_append(nullptr, g_strdup(kProcedure)); }

GimpProcedure* create_procedure(GimpPlugIn* plug_in, const gchar* name) {
  if (std::string(name) != kProcedure) return nullptr;
  GimpProcedure* p = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN, run, nullptr, nullptr);
  gimp_procedure_set_image_types(p, "RGB*, GRAY*");
  gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE);
  gimp_procedure_set_menu_label(p, kMenuLabel);
  gimp_procedure_add_menu_path(p, kMenuPath);
  gimp_procedure_set_documentation(p, kBlurb, kHelp, name);
  gimp_procedure_set_attribution(p, "inpaint developers", "inpaint developers", "2026");
  for (const Argument& a : kArguments) add_argument(p, a);
  gimp_procedure_add_layer_return_value(p, "layer", "Layer", "The new layer", FALSE, G_PARAM_READWRITE);
  return p;
}

gboolean set_i18n(GimpPlugIn*, const gchar*, gchar**, gchar**) { return FALSE; }  // no translations yet

}  // namespace

static void inpaint_plug_in_class_init(InpaintPlugInClass* klass) {
  GimpPlugInClass* plug_in = GIMP_PLUG_IN_CLASS(klass);
  plug_in->query_procedures = query_procedures;
  plug_in->create_procedure = create_procedure;
  plug_in->set_i18n = set_i18n;
}

static void inpaint_plug_in_init(InpaintPlugIn*) {}

GIMP_MAIN(inpaint_plug_in_get_type())
