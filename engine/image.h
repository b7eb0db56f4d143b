// Pixels in memory and image files (PNG/JPEG, 8 or 16 bit, grey/RGB/RGBA) via stb.
#pragma once
#include <cstdint>
#include <filesystem>
#include <utility>
#include <vector>

namespace inpaint {

struct Image {  // 8-bit, interleaved, 1 to 4 channels
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

struct Mask {  // 0..1 per pixel, 1 = repaint
  int width = 0, height = 0;
  std::vector<float> values;
};

// Width and height from the file's header, without decoding it. Throws Error.
std::pair<int, int> image_size(const std::filesystem::path& path);
// Reads any PNG or JPEG; 16-bit files are rounded to 8 bits. Throws Error naming the file.
Image load_image(const std::filesystem::path& path);
// A mask from any image: grey value (or the mean of RGB, times alpha if present) in 0..1,
// at full 16-bit precision when the file has it.
Mask load_mask(const std::filesystem::path& path);
// Writes a PNG (atomically: a temporary file renamed into place).
void save_png(const std::filesystem::path& path, const Image& image);
Image to_rgb(const Image& image);  // drops alpha / expands grey

}  // namespace inpaint
