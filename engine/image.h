// Pixels in memory and image files (PNG/JPEG, 8 or 16 bit, grey/RGB/RGBA) via stb.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace inpaint {

// The largest pictures read: 100 megapixels, and stb's limit on a side.
constexpr uint64_t kMaxImagePixels = 100'000'000;
constexpr uint64_t kMaxImageSide = 1u << 24;

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
// Channels in the file (1-4) and whether its samples are 16-bit, from its header.
std::pair<int, bool> image_channels(const std::filesystem::path& path);
// Reads any PNG or JPEG; 16-bit files are rounded to 8 bits. Throws Error naming the file.
Image load_image(const std::filesystem::path& path);
// A mask from any image: grey value (or the mean of RGB, times alpha if present) in 0..1,
// at full 16-bit precision when the file has it.
Mask load_mask(const std::filesystem::path& path);
// The samples of a 16-bit file as stored (interleaved, the file's channels); empty for
// an 8-bit file. Throws Error naming the file.
std::vector<uint16_t> load_samples16(const std::filesystem::path& path);

// The 16-bit picture of an 8-bit `result` made from a 16-bit input: the input's samples
// wherever the result did not change the pixel (all pixels the mask leaves alone), the
// result's (x257) elsewhere.
std::vector<uint16_t> widen_result(const std::vector<uint16_t>& input16, const Image& result);

// The formats save_image writes, from the file name's extension: "png", "jpeg", or ""
// for anything else.
std::string image_format(const std::filesystem::path& path);

// Writes a PNG (8-bit, or 16-bit from `samples16` when given) or a JPEG (quality 95;
// 8-bit, no alpha), by the extension, atomically: a file of this process's own renamed
// into place. `cancelled` is asked before the rename: true leaves nothing written and
// throws Error. Throws Error naming the file and the reason.
void save_image(const std::filesystem::path& path, const Image& image, const std::vector<uint16_t>* samples16 = nullptr,
                const std::function<bool()>& cancelled = {});
Image to_rgb(const Image& image);  // drops alpha / expands grey

}  // namespace inpaint
