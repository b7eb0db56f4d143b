#include "plugin/gimp2/dialog.h"

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include <cstring>
#include <string>

#include "engine/installed_models.h"
#include "engine/schedulers/scheduler.h"

namespace inpaint::plugin {
namespace {

constexpr const char* kClassicLabel = "Classic fill (no model)";

void set_string(char* dst, size_t size, const std::string& value) {
  std::strncpy(dst, value.c_str(), size - 1);
  dst[size - 1] = '\0';
}

GtkWidget* label(const char* text) {
  GtkWidget* l = gtk_label_new_with_mnemonic(text);
  gtk_misc_set_alignment(GTK_MISC(l), 0.0, 0.5);
  return l;
}

// One "label: widget" row of a table.
void row(GtkWidget* table, int r, const char* text, GtkWidget* widget) {
  GtkWidget* l = label(text);
  gtk_label_set_mnemonic_widget(GTK_LABEL(l), widget);
  gtk_table_attach(GTK_TABLE(table), l, 0, 1, r, r + 1, GTK_FILL, GTK_FILL, 0, 0);
  gtk_table_attach(GTK_TABLE(table), widget, 1, 2, r, r + 1, GtkAttachOptions(GTK_EXPAND | GTK_FILL), GTK_FILL, 0, 0);
}

GtkWidget* spin(double value, double lo, double hi, double step, int digits) {
  GtkObject* adj = gtk_adjustment_new(value, lo, hi, step, step * 10, 0);
  GtkWidget* s = gtk_spin_button_new(GTK_ADJUSTMENT(adj), step, digits);
  gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(s), TRUE);
  return s;
}

GtkWidget* combo_with(const std::vector<std::string>& items, const std::string& current, bool entry) {
  GtkWidget* c = entry ? gtk_combo_box_text_new_with_entry() : gtk_combo_box_text_new();
  int active = -1, i = 0;
  for (const auto& item : items) {
    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(c), item.c_str());
    if (item == current) active = i;
    ++i;
  }
  if (active >= 0) gtk_combo_box_set_active(GTK_COMBO_BOX(c), active);
  else if (entry) gtk_entry_set_text(GTK_ENTRY(gtk_bin_get_child(GTK_BIN(c))), current.c_str());
  return c;
}

std::string combo_text(GtkWidget* c) {
  gchar* t = gtk_combo_box_text_get_active_text(GTK_COMBO_BOX_TEXT(c));
  std::string s = t ? t : "";
  g_free(t);
  return s;
}

}  // namespace

bool show_dialog(Settings& s) {
  gimp_ui_init(kBinary, FALSE);
  GtkWidget* dialog = gimp_dialog_new("Inpaint Selection", kBinary, nullptr, GtkDialogFlags(0), gimp_standard_help_func,
                                      kProcedure, GTK_STOCK_CANCEL, GTK_RESPONSE_CANCEL, GTK_STOCK_OK, GTK_RESPONSE_OK,
                                      nullptr);
  gimp_window_set_transient(GTK_WINDOW(dialog));
  GtkWidget* box = gtk_vbox_new(FALSE, 6);
  gtk_container_set_border_width(GTK_CONTAINER(box), 12);
  gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dialog))), box, TRUE, TRUE, 0);

  gtk_box_pack_start(GTK_BOX(box), label("_Prompt: what should be in the selection"), FALSE, FALSE, 0);
  GtkWidget* prompt = gtk_text_view_new();
  gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(prompt), GTK_WRAP_WORD);
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(prompt)), s.prompt, -1);
  GtkWidget* scroll = gtk_scrolled_window_new(nullptr, nullptr);
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_AUTOMATIC, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(scroll), GTK_SHADOW_IN);
  gtk_widget_set_size_request(scroll, 420, 70);
  gtk_container_add(GTK_CONTAINER(scroll), prompt);
  gtk_box_pack_start(GTK_BOX(box), scroll, TRUE, TRUE, 0);

  GtkWidget* table = gtk_table_new(8, 2, FALSE);
  gtk_table_set_row_spacings(GTK_TABLE(table), 4);
  gtk_table_set_col_spacings(GTK_TABLE(table), 8);
  gtk_box_pack_start(GTK_BOX(box), table, FALSE, FALSE, 0);
  GtkWidget* negative = gtk_entry_new();
  gtk_entry_set_text(GTK_ENTRY(negative), s.negative_prompt);
  row(table, 0, "_Negative prompt:", negative);
  std::vector<std::string> models = installed_models();
  models.push_back(kClassicLabel);
  const std::string current = s.model == std::string(kClassicFill) || (!s.model[0] && models.size() == 1)
                                  ? kClassicLabel : s.model;
  GtkWidget* model = combo_with(models, current, true);
  gtk_widget_set_tooltip_text(model, ("An installed model (in " + models_dir().string() +
                                      "), the path of a model folder / .safetensors file, or the classic fill: "
                                      "no model, patches from the rest of the picture (prompt and steps unused)").c_str());
  row(table, 1, "_Model:", model);
  GtkWidget* steps = spin(s.steps, 1, 1000, 1, 0);
  row(table, 2, "_Steps:", steps);
  GtkWidget* guidance = spin(s.guidance, 0, 30, 0.5, 1);
  row(table, 3, "_Guidance:", guidance);
  GtkWidget* strength = spin(s.strength, 0.01, 1, 0.05, 2);
  row(table, 4, "St_rength:", strength);
  guint32 seed = s.seed;
  gboolean random_seed = s.random_seed;
  GtkWidget* seed_widget = gimp_random_seed_new(&seed, &random_seed);
  row(table, 5, "S_eed:", seed_widget);
  std::vector<std::string> schedulers{"(model default)"};
  for (const auto& n : scheduler_names()) schedulers.push_back(n);
  GtkWidget* scheduler = combo_with(schedulers, s.scheduler[0] ? s.scheduler : "(model default)", false);
  row(table, 6, "S_cheduler:", scheduler);
  GtkWidget* merged = gtk_check_button_new_with_mnemonic("Sample _merged (use the visible image)");
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(merged), s.sample_merged);
  gtk_table_attach(GTK_TABLE(table), merged, 0, 2, 7, 8, GTK_FILL, GTK_FILL, 0, 0);

  GtkWidget* advanced = gtk_expander_new_with_mnemonic("_Advanced");
  // Open when something in it is set: a LoRA or a memory limit should not act unseen.
  gtk_expander_set_expanded(GTK_EXPANDER(advanced), s.loras[0] || s.taesd[0] || s.max_memory[0] ||
                                                        s.context != -1 || s.resolution || s.threads ||
                                                        s.grow != Settings{}.grow || s.feather != Settings{}.feather ||
                                                        std::string(s.precision) != Settings{}.precision);
  gtk_box_pack_start(GTK_BOX(box), advanced, FALSE, FALSE, 0);
  GtkWidget* adv = gtk_table_new(9, 2, FALSE);
  gtk_table_set_row_spacings(GTK_TABLE(adv), 4);
  gtk_table_set_col_spacings(GTK_TABLE(adv), 8);
  gtk_container_add(GTK_CONTAINER(advanced), adv);
  GtkWidget* context = spin(s.context, -1, 4096, 8, 0);
  gtk_widget_set_tooltip_text(context, "Pixels of surroundings the model sees around the selection; -1: automatic");
  row(adv, 0, "Context _margin (px):", context);
  GtkWidget* resolution = spin(s.resolution, 0, 2048, 64, 0);
  gtk_widget_set_tooltip_text(resolution, "Side of the square the model works at; 0: its own (512 for SD 1.5 and 2, 1024 for SDXL)");
  row(adv, 1, "Working _resolution:", resolution);
  GtkWidget* memory = gtk_entry_new();
  gtk_entry_set_text(GTK_ENTRY(memory), s.max_memory);
  gtk_widget_set_tooltip_text(memory, "e.g. 1G or 750M; empty: no limit (fastest)");
  row(adv, 2, "Memory _limit:", memory);
  GtkWidget* threads = spin(s.threads, 0, 256, 1, 0);
  gtk_widget_set_tooltip_text(threads, "0: all cores");
  row(adv, 3, "_Threads:", threads);
  GtkWidget* loras = gtk_entry_new();
  gtk_entry_set_text(GTK_ENTRY(loras), s.loras);
  gtk_widget_set_tooltip_text(loras, ("LoRAs to apply: an installed one's name (in " + (models_dir() / "lora").string() +
                                      ") or a .safetensors file, optionally :SCALE; several separated by ';'. "
                                      "lcm-lora-sd15 with the lcm scheduler, 4 steps and guidance 1: 4-5x faster than 20 steps.").c_str());
  row(adv, 4, "_LoRA:", loras);
  GtkWidget* fast_decoder = gtk_check_button_new_with_mnemonic("_Fast image encoder/decoder (TAESD, approximate)");
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(fast_decoder), s.taesd[0] != '\0');
  gtk_widget_set_tooltip_text(fast_decoder, ("Encodes and decodes ~10x faster than the model's VAE, approximately; installed in " +
                                             (models_dir() / "taesd").string() + " by `inpaint models fetch taesd`").c_str());
  gtk_table_attach(GTK_TABLE(adv), fast_decoder, 0, 2, 5, 6, GTK_FILL, GTK_FILL, 0, 0);
  GtkWidget* grow = spin(s.grow, 0, 1000, 1, 0);
  gtk_widget_set_tooltip_text(grow, "Pixels the repainted area reaches past the selection");
  row(adv, 6, "_Grow (px):", grow);
  GtkWidget* feather = spin(s.feather, 0, 1000, 1, 0);
  gtk_widget_set_tooltip_text(feather, "Pixels over which the result fades in, inside the selection");
  row(adv, 7, "_Feather (px):", feather);
  GtkWidget* precision = combo_with({"auto", "fp32", "bf16"}, s.precision, false);
  gtk_widget_set_tooltip_text(precision, "auto: bf16 where the processor multiplies bf16 natively (AMX, AVX512-BF16; "
                                         "up to 4x faster, less exact), else fp32");
  row(adv, 8, "_Precision:", precision);

  gtk_widget_show_all(dialog);
  const bool ok = gimp_dialog_run(GIMP_DIALOG(dialog)) == GTK_RESPONSE_OK;
  if (ok) {
    GtkTextBuffer* buffer = gtk_text_view_get_buffer(GTK_TEXT_VIEW(prompt));
    GtkTextIter a, b;
    gtk_text_buffer_get_bounds(buffer, &a, &b);
    gchar* text = gtk_text_buffer_get_text(buffer, &a, &b, FALSE);
    set_string(s.prompt, sizeof s.prompt, text);
    g_free(text);
    set_string(s.negative_prompt, sizeof s.negative_prompt, gtk_entry_get_text(GTK_ENTRY(negative)));
    const std::string chosen = combo_text(model);
    set_string(s.model, sizeof s.model, chosen == kClassicLabel ? kClassicFill : chosen);
    const std::string sched = combo_text(scheduler);
    set_string(s.scheduler, sizeof s.scheduler, sched == "(model default)" ? "" : sched);
    s.steps = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(steps));
    s.guidance = gtk_spin_button_get_value(GTK_SPIN_BUTTON(guidance));
    s.strength = gtk_spin_button_get_value(GTK_SPIN_BUTTON(strength));
    s.seed = seed;
    s.random_seed = random_seed;
    s.sample_merged = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(merged));
    s.context = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(context));
    s.resolution = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(resolution));
    set_string(s.max_memory, sizeof s.max_memory, gtk_entry_get_text(GTK_ENTRY(memory)));
    s.threads = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(threads));
    s.grow = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(grow));
    s.feather = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(feather));
    set_string(s.precision, sizeof s.precision, combo_text(precision));
    set_string(s.loras, sizeof s.loras, gtk_entry_get_text(GTK_ENTRY(loras)));
    set_string(s.taesd, sizeof s.taesd, gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(fast_decoder)) ? "taesd" : "");
  }
  gtk_widget_destroy(dialog);
  return ok;
}

}  // namespace inpaint::plugin
