// Every GIMP call the shared core (inpaint_selection.cpp) makes, behind plain types and
// GIMP's integer ids (images, items): plugin/gimp2/gimp_host.cpp and
// plugin/gimp3/gimp_host.cpp implement it, each for its libgimp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/image.h"
#include "engine/roi.h"

namespace inpaint::plugin::gimp {

enum class BaseType { Rgb, Gray, Indexed };

BaseType base_type(int32_t image);
Box image_rect(int32_t image);
Box drawable_rect(int32_t drawable);  // in image coordinates (offsets applied)
// The selection's bounding box; false when nothing is selected.
bool selection_bounds(int32_t image, Box* bounds);
// The selection's values (0..1, soft) in `rect` (image coordinates).
Mask read_selection(int32_t image, const Box& rect);
// Colour pixels in `rect` (the drawable's own coordinates) as RGB 8-bit, whatever the
// drawable's type and precision.
Image read_rgb(int32_t drawable, const Box& rect);
// A layer holding the visible image (for "sample merged"); remove_item() it afterwards.
int32_t visible_layer(int32_t image);
void remove_item(int32_t item);

// Adds a layer above `above` (or at the top) at `rect` (image coordinates) with
// straight-alpha RGBA float pixels, in the image's precision; one undo step.
int32_t add_layer(int32_t image, int32_t above, const std::string& name, const Box& rect,
                  const std::vector<float>& rgba);

void progress_start(const std::string& text);
void progress_text(const std::string& text);
void progress_fraction(double fraction);

}  // namespace inpaint::plugin::gimp
