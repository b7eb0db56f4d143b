#include "plugin/gimp3/dialog.h"

#include <libgimp/gimpui.h>

#include <string>
#include <vector>

#include "engine/installed_models.h"
#include "plugin/core/settings.h"

namespace inpaint::plugin {
namespace {

void pack(GtkWidget* box, GtkWidget* widget, bool expand = false) {
  gtk_box_pack_start(GTK_BOX(box), widget, expand, expand, 0);
  gtk_widget_show(widget);
}

// A widget GimpProcedureDialog made for a property, packed into `box`.
void pack_property(GimpProcedureDialog* dialog, GtkWidget* box, const char* property, GType type = G_TYPE_NONE) {
  GtkWidget* widget = gimp_procedure_dialog_get_widget(dialog, property, type);
  g_object_ref(widget);  // the dialog's table keeps its own reference
  pack(box, widget);
}

// "Label  [combo with an entry]": the entry is the text property, the list suggestions.
void pack_suggestions(GObject* config, GtkWidget* box, const char* property, const char* label_text,
                      const std::vector<std::string>& suggestions, const std::string& tooltip) {
  GtkWidget* row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget* label = gtk_label_new_with_mnemonic(label_text);
  GtkWidget* combo = gtk_combo_box_text_new_with_entry();
  for (const std::string& s : suggestions) gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(combo), s.c_str());
  GtkWidget* entry = gtk_bin_get_child(GTK_BIN(combo));
  g_object_bind_property(config, property, entry, "text", GBindingFlags(G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE));
  gtk_label_set_mnemonic_widget(GTK_LABEL(label), entry);
  gtk_widget_set_tooltip_text(combo, tooltip.c_str());
  gtk_widget_set_hexpand(combo, TRUE);
  pack(row, label);
  gtk_box_pack_start(GTK_BOX(row), combo, TRUE, TRUE, 0);
  gtk_widget_show(combo);
  pack(box, row);
}

const Argument& argument(const std::string& name) {
  for (const Argument& a : kArguments)
    if (name == a.name) return a;
  return kArguments[0];
}

// "Label  [combo]" for a choice property.
void pack_choice(GObject* config, GtkWidget* box, const char* property) {
  GtkWidget* row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget* label = gtk_label_new_with_mnemonic(argument(property).label);
  GtkWidget* combo = gimp_prop_choice_combo_box_new(config, property);
  gtk_label_set_mnemonic_widget(GTK_LABEL(label), combo);
  gtk_widget_set_tooltip_text(combo, argument(property).description);
  pack(row, label);
  pack(row, combo);
  pack(box, row);
}

}  // namespace

bool show_dialog(GimpProcedure* procedure, GimpProcedureConfig* config) {
  gimp_ui_init(kBinary);
  GtkWidget* widget = gimp_procedure_dialog_new(procedure, config, "Inpaint Selection");
  GimpProcedureDialog* dialog = GIMP_PROCEDURE_DIALOG(widget);
  GObject* cfg = G_OBJECT(config);
  GtkWidget* box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_container_set_border_width(GTK_CONTAINER(box), 12);
  gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(widget))), box, TRUE, TRUE, 0);
  gtk_widget_show(box);

  GtkWidget* prompt_label = gtk_label_new_with_mnemonic("_Prompt: what should be in the selection");
  gtk_label_set_xalign(GTK_LABEL(prompt_label), 0.0);
  pack(box, prompt_label);
  GtkWidget* prompt = gimp_procedure_dialog_get_widget(dialog, "prompt", GTK_TYPE_TEXT_VIEW);
  gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(prompt), GTK_WRAP_WORD);
  gtk_label_set_mnemonic_widget(GTK_LABEL(prompt_label), prompt);
  GtkWidget* scroll = gtk_scrolled_window_new(nullptr, nullptr);
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_AUTOMATIC, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(scroll), GTK_SHADOW_IN);
  gtk_widget_set_size_request(scroll, 440, 70);
  g_object_ref(prompt);
  gtk_container_add(GTK_CONTAINER(scroll), prompt);
  gtk_widget_show(prompt);
  pack(box, scroll, true);
  pack(box, gimp_prop_label_entry_new(cfg, "negative-prompt", -1));

  std::vector<std::string> models = installed_models();
  models.push_back(kClassicFill);
  pack_suggestions(cfg, box, "model", "_Model", models,
                   "An installed model (in " + models_dir().string() +
                       "), the path of a model folder or .safetensors file, or \"classic\": no model, patches from the "
                       "rest of the picture (prompt and steps unused). Empty: the first installed model.");
  for (const char* name : {"steps", "guidance", "strength", "seed"}) pack_property(dialog, box, name);
  pack_choice(cfg, box, "scheduler");
  pack_property(dialog, box, "sample-merged");

  // Advanced: open when something in it is set (a LoRA or a memory limit should not act unseen).
  GtkWidget* advanced = gtk_expander_new_with_mnemonic("_Advanced");
  GtkWidget* adv = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_container_add(GTK_CONTAINER(advanced), adv);
  gtk_widget_show(adv);
  for (const char* name : {"context", "resolution", "grow", "feather", "threads"}) pack_property(dialog, adv, name);
  pack(adv, gimp_prop_label_entry_new(cfg, "max-memory", -1));
  pack(adv, gimp_prop_label_entry_new(cfg, "lora", -1));
  pack_suggestions(cfg, adv, "vae", argument("vae").label, {"full", "taesd"}, argument("vae").description);
  pack_choice(cfg, adv, "precision");
  bool set = false;
  for (const char* name : {"context", "resolution", "grow", "feather", "threads"}) {
    gint value = 0;
    g_object_get(cfg, name, &value, nullptr);
    set = set || value != argument(name).number;
  }
  for (const char* name : {"max-memory", "lora", "vae", "precision"}) {
    gchar* value = nullptr;
    g_object_get(cfg, name, &value, nullptr);
    set = set || std::string(value ? value : "") != argument(name).text;
    g_free(value);
  }
  gtk_expander_set_expanded(GTK_EXPANDER(advanced), set);
  pack(box, advanced);

  const bool ok = gimp_procedure_dialog_run(dialog);
  gtk_widget_destroy(widget);
  return ok;
}

}  // namespace inpaint::plugin
