#include "engine/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <cstring>

#include "engine/error.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

std::string why_not(const fs::path& path) {
  if (!fs::exists(path)) return "no such file";
  const char* reason = stbi_failure_reason();
  return std::string("not a readable PNG or JPEG image") + (reason ? " (" + std::string(reason) + ")" : "");
}

}  // namespace

std::pair<int, int> image_size(const fs::path& path) {
  int w = 0, h = 0, c = 0;
  if (!stbi_info(path.c_str(), &w, &h, &c)) throw Error(path.string() + ": " + why_not(path));
  return {w, h};
}

Image load_image(const fs::path& path) {
  int w = 0, h = 0, c = 0;
  Image img;
  if (stbi_is_16_bit(path.c_str())) {
    stbi_us* data = stbi_load_16(path.c_str(), &w, &h, &c, 0);
    if (!data) throw Error(path.string() + ": " + why_not(path));
    img.pixels.resize(static_cast<size_t>(w) * h * c);
    for (size_t i = 0; i < img.pixels.size(); ++i)
      img.pixels[i] = static_cast<uint8_t>((data[i] * 255u + 32767u) / 65535u);
    stbi_image_free(data);
  } else {
    stbi_uc* data = stbi_load(path.c_str(), &w, &h, &c, 0);
    if (!data) throw Error(path.string() + ": " + why_not(path));
    img.pixels.assign(data, data + static_cast<size_t>(w) * h * c);
    stbi_image_free(data);
  }
  img.width = w;
  img.height = h;
  img.channels = c;
  return img;
}

namespace {
// Grey value (mean of the colour channels, times alpha) of each pixel, in 0..1, straight
// from the decoder's samples: no intermediate copy of a 12-megapixel mask.
template <typename Sample>
Mask mask_from(const Sample* data, int w, int h, int c, float full_scale) {
  Mask m{w, h, std::vector<float>(static_cast<size_t>(w) * h)};
  const bool alpha = c == 2 || c == 4;
  const int colour = alpha ? c - 1 : c;
  for (size_t i = 0; i < m.values.size(); ++i) {
    float s = 0;
    for (int k = 0; k < colour; ++k) s += float(data[i * c + k]);
    s /= float(colour) * full_scale;
    if (alpha) s *= float(data[i * c + c - 1]) / full_scale;
    m.values[i] = s;
  }
  return m;
}
}  // namespace

Mask load_mask(const fs::path& path) {
  int w = 0, h = 0, c = 0;
  if (stbi_is_16_bit(path.c_str())) {
    stbi_us* data = stbi_load_16(path.c_str(), &w, &h, &c, 0);
    if (!data) throw Error(path.string() + ": " + why_not(path));
    Mask m = mask_from(data, w, h, c, 65535.f);
    stbi_image_free(data);
    return m;
  }
  stbi_uc* data = stbi_load(path.c_str(), &w, &h, &c, 0);
  if (!data) throw Error(path.string() + ": " + why_not(path));
  Mask m = mask_from(data, w, h, c, 255.f);
  stbi_image_free(data);
  return m;
}

void save_png(const fs::path& path, const Image& img) {
  const fs::path tmp = path.string() + ".partial.png";
  if (!stbi_write_png(tmp.c_str(), img.width, img.height, img.channels, img.pixels.data(),
                      img.width * img.channels))
    throw Error(path.string() + ": cannot write the PNG (folder missing, no permission or disk full?)");
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(path.string() + ": cannot write: " + ec.message());
  }
}

Image to_rgb(const Image& in) {
  if (in.channels == 3) return in;
  Image out{in.width, in.height, 3, std::vector<uint8_t>(static_cast<size_t>(in.width) * in.height * 3)};
  for (size_t i = 0; i < static_cast<size_t>(in.width) * in.height; ++i)
    for (int k = 0; k < 3; ++k)
      out.pixels[i * 3 + k] = in.pixels[i * in.channels + (in.channels >= 3 ? k : 0)];
  return out;
}

}  // namespace inpaint
