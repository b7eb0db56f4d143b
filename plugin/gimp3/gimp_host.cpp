// plugin/core/gimp_host.h on GIMP 3's libgimp: objects looked up from the core's ids.
#include "plugin/core/gimp_host.h"

#include <libgimp/gimp.h>

#include "engine/error.h"

namespace inpaint::plugin::gimp {
namespace {

GeglRectangle gegl_rect(const Box& b) {
  return {static_cast<gint>(b.x), static_cast<gint>(b.y), static_cast<gint>(b.width), static_cast<gint>(b.height)};
}

GimpImage* image_of(int32_t id) {
  GimpImage* image = gimp_image_get_by_id(id);
  if (!image) throw Error("the image is gone (closed while Inpaint ran?)");
  return image;
}

GimpDrawable* drawable_of(int32_t id) {
  GimpDrawable* drawable = gimp_drawable_get_by_id(id);
  if (!drawable) throw Error("the layer is gone (deleted while Inpaint ran?)");
  return drawable;
}

void read_pixels(GimpDrawable* drawable, const Box& rect, const char* format, void* out) {
  GeglBuffer* buffer = gimp_drawable_get_buffer(drawable);
  const GeglRectangle r = gegl_rect(rect);
  gegl_buffer_get(buffer, &r, 1.0, babl_format(format), out, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buffer);
}

}  // namespace

BaseType base_type(int32_t image) {
  switch (gimp_image_get_base_type(image_of(image))) {
    case GIMP_RGB: return BaseType::Rgb;
    case GIMP_GRAY: return BaseType::Gray;
    default: return BaseType::Indexed;
  }
}

Box image_rect(int32_t image) {
  GimpImage* i = image_of(image);
  return {0, 0, gimp_image_get_width(i), gimp_image_get_height(i)};
}

Box drawable_rect(int32_t drawable) {
  GimpDrawable* d = drawable_of(drawable);
  gint x = 0, y = 0;
  gimp_drawable_get_offsets(d, &x, &y);
  return {x, y, gimp_drawable_get_width(d), gimp_drawable_get_height(d)};
}

bool selection_bounds(int32_t image, Box* bounds) {
  gboolean non_empty = FALSE;
  gint x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  // It reports the whole image when nothing is selected: trust non_empty only.
  if (!gimp_selection_bounds(image_of(image), &non_empty, &x1, &y1, &x2, &y2) || !non_empty) return false;
  *bounds = {x1, y1, x2 - x1, y2 - y1};
  return true;
}

Mask read_selection(int32_t image, const Box& rect) {
  Mask m{static_cast<int>(rect.width), static_cast<int>(rect.height), std::vector<float>(size_t(rect.width * rect.height))};
  read_pixels(GIMP_DRAWABLE(gimp_image_get_selection(image_of(image))), rect, "Y float", m.values.data());
  return m;
}

Image read_rgb(int32_t drawable, const Box& rect) {
  Image img{static_cast<int>(rect.width), static_cast<int>(rect.height), 3, std::vector<uint8_t>(size_t(rect.width * rect.height * 3))};
  read_pixels(drawable_of(drawable), rect, "R'G'B' u8", img.pixels.data());
  return img;
}

int32_t visible_layer(int32_t image) {
  GimpImage* i = image_of(image);
  return gimp_item_get_id(GIMP_ITEM(gimp_layer_new_from_visible(i, i, "inpaint: visible")));
}

void remove_item(int32_t item) {
  if (GimpItem* i = gimp_item_get_by_id(item)) gimp_item_delete(i);
}

int32_t add_layer(int32_t image_id, int32_t above, const std::string& name, const Box& rect,
                  const std::vector<float>& rgba) {
  GimpImage* image = image_of(image_id);
  gimp_image_undo_group_start(image);
  const GimpImageType type = gimp_image_get_base_type(image) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  GimpLayer* layer = gimp_layer_new(image, name.c_str(), rect.width, rect.height, type, 100.0,
                                    gimp_image_get_default_new_layer_mode(image));
  GimpLayer* parent = nullptr;
  gint position = 0;
  GimpItem* anchor = gimp_item_get_by_id(above);
  if (anchor && gimp_item_is_layer_mask(anchor)) anchor = GIMP_ITEM(gimp_layer_from_mask(GIMP_LAYER_MASK(anchor)));
  if (anchor && gimp_item_is_layer(anchor)) {
    GimpItem* p = gimp_item_get_parent(anchor);
    parent = p ? GIMP_LAYER(p) : nullptr;
    position = gimp_image_get_item_position(image, anchor);
  }
  gimp_image_insert_layer(image, layer, parent, position);
  gimp_layer_set_offsets(layer, rect.x, rect.y);
  GeglBuffer* buffer = gimp_drawable_get_buffer(GIMP_DRAWABLE(layer));
  const GeglRectangle r{0, 0, static_cast<gint>(rect.width), static_cast<gint>(rect.height)};
  gegl_buffer_set(buffer, &r, 0, babl_format("R'G'B'A float"), rgba.data(), GEGL_AUTO_ROWSTRIDE);
  g_object_unref(buffer);  // flushes the pixels to the core
  gimp_drawable_update(GIMP_DRAWABLE(layer), 0, 0, rect.width, rect.height);
  gimp_image_undo_group_end(image);
  return gimp_item_get_id(GIMP_ITEM(layer));
}

void progress_start(const std::string& text) { gimp_progress_init(text.c_str()); }
void progress_text(const std::string& text) { gimp_progress_set_text(text.c_str()); }
void progress_fraction(double fraction) { gimp_progress_update(fraction); }

}  // namespace inpaint::plugin::gimp
