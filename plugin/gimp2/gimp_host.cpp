#include "plugin/core/gimp_host.h"

#include <libgimp/gimp.h>

#include <algorithm>

namespace inpaint::plugin::gimp {
namespace {

GeglRectangle gegl_rect(const Box& b) {
  return {static_cast<gint>(b.x), static_cast<gint>(b.y), static_cast<gint>(b.width), static_cast<gint>(b.height)};
}

}  // namespace

BaseType base_type(int32_t image) {
  switch (gimp_image_base_type(image)) {
    case GIMP_RGB: return BaseType::Rgb;
    case GIMP_GRAY: return BaseType::Gray;
    default: return BaseType::Indexed;
  }
}

Box image_rect(int32_t image) { return {0, 0, gimp_image_width(image), gimp_image_height(image)}; }

Box drawable_rect(int32_t drawable) {
  gint x = 0, y = 0;
  gimp_drawable_offsets(drawable, &x, &y);
  return {x, y, gimp_drawable_width(drawable), gimp_drawable_height(drawable)};
}

bool selection_bounds(int32_t image, Box* bounds) {
  gboolean non_empty = FALSE;
  gint x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  // It reports the whole image when nothing is selected: trust non_empty only.
  if (!gimp_selection_bounds(image, &non_empty, &x1, &y1, &x2, &y2) || !non_empty) return false;
  *bounds = {x1, y1, x2 - x1, y2 - y1};
  return true;
}

Mask read_selection(int32_t image, const Box& rect) {
  Mask m{static_cast<int>(rect.width), static_cast<int>(rect.height), std::vector<float>(size_t(rect.width * rect.height))};
  GeglBuffer* buffer = gimp_drawable_get_buffer(gimp_image_get_selection(image));
  const GeglRectangle r = gegl_rect(rect);
  gegl_buffer_get(buffer, &r, 1.0, babl_format("Y float"), m.values.data(), GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buffer);
  return m;
}

Image read_rgb(int32_t drawable, const Box& rect) {
  Image img{static_cast<int>(rect.width), static_cast<int>(rect.height), 3, std::vector<uint8_t>(size_t(rect.width * rect.height * 3))};
  GeglBuffer* buffer = gimp_drawable_get_buffer(drawable);
  const GeglRectangle r = gegl_rect(rect);
  gegl_buffer_get(buffer, &r, 1.0, babl_format("R'G'B' u8"), img.pixels.data(), GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buffer);
  return img;
}

int32_t visible_layer(int32_t image) { return gimp_layer_new_from_visible(image, image, "inpaint: visible"); }

void remove_item(int32_t item) { gimp_item_delete(item); }

int32_t add_layer(int32_t image, int32_t above, const std::string& name, const Box& rect,
                  const std::vector<float>& rgba) {
  gimp_image_undo_group_start(image);
  const GimpImageType type = gimp_image_base_type(image) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  const gint32 layer = gimp_layer_new(image, name.c_str(), rect.width, rect.height, type, 100.0,
                                      gimp_image_get_default_new_layer_mode(image));
  gint32 parent = 0, position = 0;
  gint32 anchor = gimp_item_is_layer_mask(above) ? gimp_layer_from_mask(above) : above;
  if (anchor > 0 && gimp_item_is_layer(anchor)) {
    parent = std::max(0, gimp_item_get_parent(anchor));  // -1: top level, which insert takes as 0
    position = gimp_image_get_item_position(image, anchor);
  }
  gimp_image_insert_layer(image, layer, parent, position);
  gimp_layer_set_offsets(layer, rect.x, rect.y);
  GeglBuffer* buffer = gimp_drawable_get_buffer(layer);
  const GeglRectangle r{0, 0, static_cast<gint>(rect.width), static_cast<gint>(rect.height)};
  gegl_buffer_set(buffer, &r, 0, babl_format("R'G'B'A float"), rgba.data(), GEGL_AUTO_ROWSTRIDE);
  g_object_unref(buffer);  // flushes the pixels to the core
  gimp_drawable_update(layer, 0, 0, rect.width, rect.height);
  gimp_image_undo_group_end(image);
  return layer;
}

void progress_start(const std::string& text) { gimp_progress_init(text.c_str()); }
void progress_text(const std::string& text) { gimp_progress_set_text(text.c_str()); }
void progress_fraction(double fraction) { gimp_progress_update(fraction); }

}  // namespace inpaint::plugin::gimp
